"""Identity tracking: accuracy on perturbed ground truth and on model output, against sleap-nn's and SLEAP's
trackers on the same detections, on SLEAP's real fly predictions, and its cost.

    python benchmarks/tracking.py [--sleap-nn-python VENV/bin/python] [--sleap-python VENV/bin/python]
                                  [--only accuracy,model,flies,cost] [--frames 3000]

1. accuracy: synthetic videos of 2, 4 and 8 animals (3000 frames; frames sized so every animal is about
   150 px long, which keeps OKS matching of a 2 px jitter well above 0.5), their ground truth perturbed
   into detections (2 px jitter, 5% dropped nodes, 2% missing instances in runs of 1-5 frames, 1%
   false instances). Each tracker re-tracks the same detections (.h5 for ours, .slp for the others);
   `posestream evaluate` scores every output against the ground truth the same way (TrackEval, OKS >=
   0.5). "ceiling": the detections given their true identities (what the perturbation leaves to win).
   Peers, each in its own virtual env (their runners are written beside the data):
       python3 -m venv sleap_nn_venv && sleap_nn_venv/bin/pip install "sleap-nn==0.3.5" torch==2.13.0
       python3 -m venv sleap_venv && sleap_venv/bin/pip install --no-deps sleap==1.4.1 && \\
           sleap_venv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" ... (SLEAP 1.4.1 pins TensorFlow
           2.7-2.8, which has no Python 3.11 wheel; 2.15 runs its tracker with the import shims in
           SLEAP_RUNNER)
   sleap-nn 0.3.5's default tracker (`sleap-nn track`: OKS, Hungarian, a 5-frame window), SLEAP 1.4.1's
   `simple` and `flow` trackers (instance similarity, greedy, 5-frame window; flow shifts the last poses
   by optical flow on the frames). Time per frame: the tracking call alone (SLEAP's includes reading the
   frames, which its tracker does even for `simple`).
2. model: the embedded demo model on a fresh 2-animal 3000-frame video, `track --tracking --max-tracks 2`.
3. flies: `retrack` of SLEAP's own predictions of the fly video (centered_pair_predictions.slp, 2 flies
   that SLEAP split into 27 tracks) with --max-tracks 2, next to sleap-nn's with the same limit; frames
   where the motion of the two identities suggests a swap, and a picture of frames to check by eye.
4. cost: the tracker's time per frame (median, one thread) for 2 animals of 24 nodes (the fly
   predictions) and 20 animals of 24 nodes (synthetic); `posestream bench --tracking` on the fly video
   (tracked over untracked end-to-end FPS, in alternating rounds) with a 24-node bottom-up fly network
   (benchmarks/same_size.py's, trained here if absent); peak RSS of `track --tracking` over 1,000 and
   20,000 frames.

Writes the "tracking" section of benchmarks/RESULTS.md and benchmarks/tracking_flies.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from results import SLEAP_NN_SHIM, peak_rss_and_seconds, posestream_command, run_posestream, write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "tracking"
ANIMALS = {2: 752, 4: 1064, 8: 1504}  # animals -> frame side: every animal is ~150 px long
PERTURB = ["--jitter", 2, "--drop-nodes", 0.05, "--drop-instances", 0.02, "--false-instances", 0.01]
IDF1_BAR, MODEL_IDF1_BAR = 0.98, 0.95

SLEAP_NN_RUNNER = (
    SLEAP_NN_SHIM
    + """import json, time
import sleap_io as sio
from loguru import logger
from sleap_nn.inference.tracking import TrackerConfig, apply_tracking
logger.remove()
source, target, max_tracks = sys.argv[1], sys.argv[2], (int(sys.argv[3]) if len(sys.argv) > 3 else None)
labels = sio.load_slp(source)
for lf in labels.labeled_frames:
    for inst in lf.instances:
        inst.track = None
labels.tracks = []
method = "local_queues" if max_tracks else "fixed_window"
config = TrackerConfig(max_tracks=max_tracks, candidates_method=method)
started = time.perf_counter()
tracked = apply_tracking(labels, config)
seconds = time.perf_counter() - started
tracked.save(target)
print(json.dumps({"seconds": seconds, "frames": len(tracked.labeled_frames)}))
"""
)
SLEAP_RUNNER = """import json, os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen"); os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras, keras.utils
from keras.src.utils import tf_utils
keras.utils.tf_utils = tf_utils; sys.modules.setdefault("keras.utils.tf_utils", tf_utils)
import sleap
from sleap.nn.tracking import Tracker, run_tracker
source, target, name = sys.argv[1:4]
max_tracks = int(sys.argv[4]) if len(sys.argv) > 4 else None
labels = sleap.load_file(source)
frames = sorted(labels.labeled_frames, key=lambda lf: lf.frame_idx)
limited = max_tracks is not None
tracker = Tracker.make_tracker_by_name(tracker=name, max_tracking=limited, max_tracks=max_tracks)
started = time.perf_counter()
frames = run_tracker(frames=frames, tracker=tracker)
tracker.final_pass(frames)
seconds = time.perf_counter() - started
sleap.Labels(labeled_frames=frames).save(target)
print(json.dumps({"seconds": seconds, "frames": len(frames)}))
"""


def data_dir() -> Path:
    return Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))


def perturbed_video(animals: int, frames: int) -> Path:
    """The synthetic video of ``animals`` (its ground truth and detections beside it)."""
    video = OUT / f"synth_{animals}.mp4"
    if not video.with_suffix(".detections.slp").exists():
        size = ANIMALS[animals]
        run_posestream(
            "synth",
            video,
            "--num-frames",
            frames,
            "--size",
            f"{size}x{size}",
            "--animals",
            animals,
            "--seed",
            animals,
            "--quiet",
            *PERTURB,
        )
    return video


def evaluate(predictions: Path, truth: Path) -> dict:
    """`posestream evaluate`'s JSON for a tracked file against the ground truth."""
    out = predictions.with_suffix(".metrics.json")
    run_posestream("evaluate", predictions, "--labels", truth, "--json", out)
    return json.loads(out.read_text())


def ours(detections: Path, out: Path, *options) -> tuple[dict, float]:
    """(metrics, ms per frame of the tracking call) of `posestream retrack`."""
    from posestream.engine.commands.retrack import retrack
    from posestream.engine.tracking import TrackerConfig

    config = TrackerConfig(**dict(zip(options[::2], options[1::2])))
    summary = retrack(detections, out, config, progress=False)
    return summary, summary.tracking_ms_per_frame


def peer(python: str, runner: str, args: list, out: Path) -> float:
    """Run a peer's tracker in its own env (once: its output and timing are kept); ms per frame of its
    tracking call."""
    timing = out.with_suffix(".timing.json")
    if not timing.exists():
        script = OUT / f"{runner}.py"
        script.write_text({"sleap_nn_runner": SLEAP_NN_RUNNER, "sleap_runner": SLEAP_RUNNER}[runner])
        print("$", python, script, *args, flush=True)
        done = subprocess.run(
            [python, str(script), *map(str, args)], check=True, capture_output=True, text=True
        )
        timing.write_text(done.stdout.strip().splitlines()[-1])
    result = json.loads(timing.read_text())
    return 1000 * result["seconds"] / result["frames"]


def ceiling(detections: Path, truth: Path) -> dict:
    """Metrics of the detections given their true identities (one-to-one, most similar first by OKS, at OKS >=
    0.1; the others, fragments and phantoms, untracked)."""
    from scipy.optimize import linear_sum_assignment

    from posestream.engine.sinks import AnalysisH5Writer, read_analysis_h5
    from posestream.engine.sinks.analysis_h5 import AnalysisH5Reader
    from posestream.train.oks import oks_matrix

    gt = read_analysis_h5(truth)
    out = detections.with_name(detections.name.replace(".detections.h5", ".ceiling.h5"))
    with (
        AnalysisH5Reader(detections) as reader,
        AnalysisH5Writer(out, reader.skeleton, tracked=True) as writer,
    ):
        for frame in reader.iter_frames():
            oks = oks_matrix(gt.tracks[frame.frame_idx], frame.points)  # (G, P)
            animal, found = linear_sum_assignment(oks, maximize=True)
            keep = oks[animal, found] >= 0.1
            frame.track_ids = np.full(frame.n_instances, -1, np.int32)
            frame.track_ids[found[keep]] = animal[keep]
            writer.write(frame)
    return evaluate(out, truth)


def accuracy(args, frames: int) -> list[str]:
    rows = []
    for animals in ANIMALS:
        video = perturbed_video(animals, frames)
        truth, det_h5, det_slp = (
            video.with_suffix(s) for s in (".analysis.h5", ".detections.h5", ".detections.slp")
        )
        results = [("ceiling (true identities)", ceiling(det_h5, truth), None)]
        summary, ms = ours(det_h5, OUT / f"ours_{animals}.h5")
        results.append(("**posestream** (default)", evaluate(OUT / f"ours_{animals}.h5", truth), ms))
        summary, ms = ours(det_h5, OUT / f"ours_{animals}_max.h5", "max_tracks", animals)
        results.append(
            (f"posestream --max-tracks {animals}", evaluate(OUT / f"ours_{animals}_max.h5", truth), ms)
        )
        if args.sleap_nn_python:
            target = OUT / f"sleap_nn_{animals}.slp"
            ms = peer(args.sleap_nn_python, "sleap_nn_runner", [det_slp, target], target)
            results.append(("sleap-nn 0.3.5 default", evaluate(target, truth), ms))
            target = OUT / f"sleap_nn_{animals}_max.slp"
            ms = peer(args.sleap_nn_python, "sleap_nn_runner", [det_slp, target, animals], target)
            results.append((f"sleap-nn 0.3.5 --max_tracks {animals}", evaluate(target, truth), ms))
        if args.sleap_python:
            for name in ("simple", "flow"):
                target = OUT / f"sleap_{name}_{animals}.slp"
                ms = peer(args.sleap_python, "sleap_runner", [det_slp, target, name], target)
                results.append((f"SLEAP 1.4.1 {name}", evaluate(target, truth), ms))
        for name, m, ms in results:
            timing = "" if ms is None else f"{ms:.3f}"
            rows.append(
                f"| {animals} | {name} | {m['idf1']:.4f} | {m['id_switches']} | {m['mota']:.4f} | "
                f"{m['hota']:.4f} | {m['predicted_identities']} | {timing} |"
            )
        ours_idf1 = results[1][1]["idf1"]
        print(f"{animals} animals: IDF1 {ours_idf1:.4f} (bar {IDF1_BAR})", flush=True)
    return [
        "### Identity accuracy on perturbed ground truth, against the peers on the same detections",
        "",
        f"{frames} frames per video; detections: 2 px jitter, 5% dropped nodes, 2% missing instances (runs "
        "of 1-5 frames), 1% false instances (fragments and phantoms). Metrics by TrackEval, matched at OKS "
        f">= 0.5 (`posestream evaluate`). Bar: IDF1 >= {IDF1_BAR} at every animal count, and fewer identity "
        "switches and higher IDF1 than the best peer. Time: the tracking call per frame (mean).",
        "",
        "| animals | tracker | IDF1 | ID switches | MOTA | HOTA | identities | ms / frame |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def model(frames: int) -> list[str]:
    video = OUT / "demo_2.mp4"
    if not video.exists():
        run_posestream(
            "synth",
            video,
            "--num-frames",
            frames,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            13,
            "--no-slp",
            "--quiet",
        )
    out = OUT / "demo_2_tracked.h5"
    run_posestream("track", "-i", video, "-m", "demo", "-o", out, "--tracking", "--max-tracks", 2, "--quiet")
    m = evaluate(out, video.with_suffix(".analysis.h5"))
    print(f"demo model: IDF1 {m['idf1']:.4f} (bar {MODEL_IDF1_BAR})", flush=True)
    return [
        "### On model output",
        "",
        f"The embedded demo model on a fresh synthetic video (2 animals, {frames} frames, 384x384, seed 13), "
        f"`posestream track -m demo --tracking --max-tracks 2`. Bar: IDF1 >= {MODEL_IDF1_BAR}.",
        "",
        "| IDF1 | ID switches | MOTA | HOTA | OKS mAP | identities |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {m['idf1']:.4f} | {m['id_switches']} | {m['mota']:.4f} | {m['hota']:.4f} | {m['mAP']:.3f} | "
        f"{m['predicted_identities']} |",
    ]


def identity_paths(path: Path) -> dict[str, dict[int, np.ndarray]]:
    """track name -> frame -> centroid, from a tracked .slp."""
    import sleap_io as sio

    tracks: dict[str, dict[int, np.ndarray]] = {}
    for lf in sio.load_slp(str(path), open_videos=False).labeled_frames:
        for inst in lf.instances:
            if inst.track is not None:
                tracks.setdefault(inst.track.name, {})[lf.frame_idx] = np.nanmean(inst.numpy(), axis=0)
    return tracks


def swap_suspects(path: Path) -> list[int]:
    """Frames where the two identities' centroids sit closer to the other's in the frame before."""
    (a, pa), (b, pb) = identity_paths(path).items()
    suspects = []
    for f in sorted(set(pa) & set(pb)):
        if f - 1 in pa and f - 1 in pb:
            same = np.linalg.norm(pa[f] - pa[f - 1]) + np.linalg.norm(pb[f] - pb[f - 1])
            swapped = np.linalg.norm(pa[f] - pb[f - 1]) + np.linalg.norm(pb[f] - pa[f - 1])
            if swapped < same:
                suspects.append(f)
    return suspects


def flies(args) -> list[str]:
    source = data_dir() / "centered_pair_predictions.slp"
    if not source.exists():
        return ["### Real data: SLEAP's fly predictions", "", f"skipped: {source} not found"]
    ours_out = OUT / "flies_ours.slp"
    started = time.perf_counter()
    summary, ms = ours(source, ours_out, "max_tracks", 2)
    rows = [
        f"| posestream --max-tracks 2 | {summary.identities} | {len(swap_suspects(ours_out))} | {ms:.3f} |"
    ]
    agree = ""
    if args.sleap_nn_python:
        theirs = OUT / "flies_sleap_nn.slp"
        ms_nn = peer(args.sleap_nn_python, "sleap_nn_runner", [source, theirs, 2], theirs)
        rows.append(
            f"| sleap-nn 0.3.5 --max_tracks 2 | {len(identity_paths(theirs))} | "
            f"{len(swap_suspects(theirs))} | "
            f"{ms_nn:.3f} |"
        )
        flips = correspondence_flips(ours_out, theirs)
        agree = (
            "Ours and sleap-nn's identities "
            f"{'agree on every frame' if not flips else 'differ from frames ' + str(flips)}"
            " (the correspondence of the two identities never flips)."
        )
    shown = picture(source, ours_out, HERE / "tracking_flies.png")
    print(f"flies: {summary.identities} identities in {time.perf_counter() - started:.1f} s", flush=True)
    return [
        "### Real data: SLEAP's fly predictions",
        "",
        "`posestream retrack centered_pair_predictions.slp -o flies.slp --max-tracks 2`: SLEAP's own "
        "predictions of the 1100-frame fly video (2 flies; 2-5 instances per frame; SLEAP split them into 27 "
        "tracks). Suspect frames: both identities present in a frame and the one before, and each closer to "
        "where the other was (a swap by motion).",
        "",
        "| tracker | identities | suspect frames | ms / frame |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        agree,
        "",
        f"![flies](tracking_flies.png) Frames {', '.join(map(str, shown))} (bottom), where SLEAP's own "
        "tracks broke, under the frame 5 earlier (top): our two identities (orange, blue) and the instances "
        "left untracked (white). A swap would show as the colours changing flies between the two rows.",
    ]


def correspondence_flips(a: Path, b: Path) -> list[int]:
    """Frames where the mapping between the identities of two tracked files of the same instances changes."""
    first, second = identity_paths(a), identity_paths(b)
    previous, flips = None, []
    for f in sorted({f for path in first.values() for f in path}):
        pairs = {}
        for name, path in first.items():
            for other, path2 in second.items():
                if f in path and f in path2 and np.allclose(path[f], path2[f], atol=1e-3):
                    pairs[name] = other
        if len(pairs) == 2:
            if previous is not None and pairs != previous:
                flips.append(f)
            previous = pairs
    return flips


def picture(source: Path, tracked: Path, png: Path, events: int = 4, before: int = 5) -> list[int]:
    """Frames where SLEAP's own tracks start anew, each beside the frame ``before`` frames earlier, cropped to
    the flies, with our identities drawn: a swap shows as colours changing flies. Returns the frames shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sleap_io as sio

    from posestream.engine.sinks.predictions import find_video
    from posestream.engine.sources import open_source

    original = sio.load_slp(str(source), open_videos=False)
    first_frame = {}
    for lf in original.labeled_frames:
        for inst in lf.instances:
            if inst.track is not None:
                first_frame[inst.track.name] = min(
                    first_frame.get(inst.track.name, lf.frame_idx), lf.frame_idx
                )
    starts = sorted(set(first_frame.values()) - {0})
    shown = [starts[i] for i in np.linspace(0, len(starts) - 1, events).round().astype(int)]
    by_frame = {lf.frame_idx: lf for lf in sio.load_slp(str(tracked), open_videos=False).labeled_frames}
    colors = {"track_0": "tab:orange", "track_1": "tab:blue"}
    fig, axes = plt.subplots(2, events, figsize=(3.2 * events, 6.4))
    with open_source(find_video(original.videos[0].filename, source)) as video:
        for column, f in enumerate(shown):
            pair = (max(f - before, 0), f)
            xy = np.concatenate([i.numpy() for g in pair for i in by_frame[g].instances])
            lo, hi = np.nanmin(xy, axis=0) - 25, np.nanmax(xy, axis=0) + 25
            for row, g in enumerate(pair):
                ax = axes[row, column]
                ax.imshow(video.read(g)[..., 0], cmap="gray")
                for inst in by_frame[g].instances:
                    name = inst.track.name if inst.track else ""
                    ax.plot(*inst.numpy().T, ".", ms=4, color=colors.get(name, "white"))
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(hi[1], lo[1])
                ax.set_title(f"frame {g}" + (" (SLEAP: new track)" if g == f else ""), fontsize=9)
                ax.axis("off")
    fig.tight_layout()
    fig.savefig(png, dpi=70)
    return shown


def cost(args) -> list[str]:
    from posestream.engine.tracking import Tracker, TrackerConfig

    lines = ["### Cost", ""]
    per_frame = []
    for label, frames, fps in (
        ("2 flies, 24 nodes (SLEAP's fly predictions)", fly_frames(), 15.0),
        ("20 animals, 24 nodes (synthetic, perturbed)", crowd_frames(), 30.0),
    ):
        tracker, times = Tracker(TrackerConfig(), fps), []
        for frame in frames:
            started = time.perf_counter()
            tracker.update(frame)
            times.append(time.perf_counter() - started)
        per_frame.append(
            f"| {label} | {1000 * np.median(times):.3f} | {1000 * np.percentile(times, 99):.3f} |"
        )
    lines += [
        "Tracker time per frame, one thread (`Tracker.update`; bars: 0.2 ms for 2 animals, 1 ms for 20):",
        "",
        "| input | median ms | p99 ms |",
        "|---|---:|---:|",
        *per_frame,
        "",
    ]
    model_dir = fly_model()
    video = data_dir() / "centered_pair_small.mp4"
    run_posestream("bench", "-i", video, "-m", model_dir, "--tracking", "--json", OUT / "bench_flies.json")
    result = json.loads((OUT / "bench_flies.json").read_text())
    lines += [
        "`posestream bench -i centered_pair_small.mp4 -m FLY_BOTTOMUP --tracking` (24-node bottom-up network "
        "of benchmarks/same_size.py; each of 6 rounds runs its chunk untracked and tracked, alternating "
        "which goes first). Bar: tracked >= 0.97 x untracked.",
        "",
        "| untracked FPS | tracked FPS | tracked / untracked | tracker ms / frame (in the pipeline) |",
        "|---:|---:|---:|---:|",
        f"| {result['end_to_end_fps']:.1f} | {result['end_to_end_tracked_fps']:.1f} | "
        f"{result['tracked_over_untracked']:.3f} | {result['tracking_ms_per_frame']:.3f} |",
        "",
    ]
    rss = []
    for n in (1000, 20000):
        video = OUT / f"long_{n}.mp4"
        if not video.exists():
            run_posestream(
                "synth",
                video,
                "--num-frames",
                n,
                "--size",
                "384x384",
                "--animals",
                2,
                "--seed",
                5,
                "--no-slp",
                "--quiet",
            )
        command = posestream_command(
            "track", "-i", video, "-m", "demo", "-o", OUT / f"long_{n}.h5", "--tracking", "--quiet"
        )
        mb, seconds = peak_rss_and_seconds(command)
        rss.append((n, mb, seconds))
        print(f"{n} frames tracked: peak RSS {mb:.0f} MB", flush=True)
    lines += [
        "Peak RSS of `posestream track -m demo --tracking` (no --max-tracks: identities keep being started) "
        "by video length (384x384, 2 animals). Bar: 20,000 frames within 5% of 1,000.",
        "",
        "| frames | peak RSS (MB) | FPS (process start included) |",
        "|---:|---:|---:|",
        *[f"| {n} | {mb:.0f} | {n / s:.1f} |" for n, mb, s in rss],
        f"\n20,000 / 1,000: {rss[1][1] / rss[0][1]:.3f}",
    ]
    return lines


def fly_frames() -> list:
    from posestream.engine.sinks.slp import SlpReader

    with SlpReader(data_dir() / "centered_pair_predictions.slp") as reader:
        return list(reader.iter_frames())


def crowd_frames(frames: int = 1000) -> list:
    """20 synthetic animals, perturbed, each pose resampled to 24 nodes (the nine nodes plus points along the
    skeleton's edges)."""
    from posestream.engine.synth import SYNTH_SKELETON, PerturbConfig, Perturber, PoseSimulator, SynthConfig
    from posestream.engine.types import FramePredictions

    config = SynthConfig(frames=frames, width=1504, height=1504, animals=20, seed=3)
    perturber = Perturber(PerturbConfig(2.0, 0.05, 0.02, 0.01, seed=3), 1504, 1504, 20)
    edges = SYNTH_SKELETON.edges
    weights = np.array([1 / 3, 2 / 3])  # two extra points on each of the 8 edges: 9 + 16 = 25, keep 24
    out = []
    for idx, poses in enumerate(PoseSimulator(config)):
        found = perturber(idx, poses)
        p = found.points
        extra = [p[:, a] + w * (p[:, b] - p[:, a]) for a, b in edges for w in weights]
        points = np.concatenate([p, np.stack(extra, axis=1)], axis=1)[:, :24]
        scores = np.where(np.isfinite(points[..., 0]), 1.0, np.nan)
        out.append(FramePredictions(idx, points, scores, found.instance_scores))
    return out


def fly_model() -> Path:
    """The 24-node bottom-up fly network of benchmarks/same_size.py, exported at fp32 (trained if absent)."""
    import same_size

    folder = HERE / "data" / "same_size"
    run = same_size.train("bottomup", data_dir(), folder, 10.0)
    return same_size.export(run, folder / "bottomup_fp32", "fp32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sleap-nn-python", help="python of a venv with sleap-nn==0.3.5 (skipped if not given)"
    )
    parser.add_argument("--sleap-python", help="python of a venv with SLEAP 1.4.1 (skipped if not given)")
    parser.add_argument("--only", default="accuracy,model,flies,cost")
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    parts = {
        "accuracy": lambda: accuracy(args, args.frames),
        "model": lambda: model(args.frames),
        "flies": lambda: flies(args),
        "cost": lambda: cost(args),
    }
    write_section(
        "tracking",
        [
            "## Identity tracking",
            "",
            "`python benchmarks/tracking.py --sleap-nn-python ... --sleap-python ...` "
            f"({platform.machine()}, {os.cpu_count()} cores). The subsections below are each rewritten by "
            "their part of the script (`--only accuracy,model,flies,cost`).",
        ],
    )
    for name in args.only.split(","):
        write_section(f"tracking-{name}", parts[name]())


if __name__ == "__main__":
    main()
