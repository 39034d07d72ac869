"""Several cameras in 3D (issue 27): calibration, triangulation of real labels, and triangulation throughput.

    python benchmarks/multiview.py [--parts calibration,labels,synthetic,throughput,live] [--frames 100000]
        [--out DIR]

Real data: sleap-anipose's minimal_session (4 cameras, 1280x1024, one mouse; $POSESTREAM_ANIPOSE_SESSION,
else ../shared/data/sleap-anipose/minimal_session).

- calibration (bar 1): ``posestream calibrate`` from the board images (our ArUco detection) and from the
  corners sleap-anipose detected (``--corners calibration.metadata.h5``). The stored corners triangulated with
  each calibration: adjacent corners against their 24 mm (median and p90 of |error|), and the reprojection
  error per camera.
- labels (bar 2): the proofread 2D labels (4 views, 120 frames, 15 nodes) triangulated with our calibration
  from images: reprojection error per camera (every observation, and the observations each point was solved
  from after outlier rejection at 20 px), each edge's length over the frames (coefficient of variation), and
  the distance to sleap-anipose's points3d.h5 once the two worlds are aligned (a similarity transform, since
  the two calibrations choose their own world frame and theirs was made with another calibration).
- synthetic (bar 3): ``posestream synth --cameras 4`` (2 animals, 1,000 frames, 1280x1024 cameras, 2D
  truth perturbed by 1.5 px), triangulated: 3D error median against the truth, as a share of the body
  length (bar: <= 1%), and identities: each camera names and orders its tracks its own way, so the views
  are matched by geometry; frames where a 3D track lies nearer another animal than its own are counted.
- throughput (bar 5): ``posestream triangulate`` of 4 cameras x --frames frames x 2 animals x 15 nodes
  (views made by projecting a random walk into the calibration's cameras, 1.5 px of noise), end to end and
  the triangulation alone. Run alone on the machine.
- live (bar 4): ``posestream synth --cameras 4`` at the demo model's 384x384 (1 and 2 animals, 900 frames),
  each camera's video sent by ``camera-sim`` at 30 Hz (not lossless: the rig's policy, newest frames win)
  to ``posestream live --calibration --tracking``, published to ``posestream listen -o``, each in its own
  process. Per camera: sent = received + dropped, camera to 2D pose latency; the 3D step: groups published
  (complete, partial), frames grouped and late, the step's time (wall and CPU) and camera to 3D latency;
  the groups the client recorded. 4 cameras at 30 Hz are more frames than the demo model serves on 2
  cores (the engine drops the oldest); runs at 20 Hz, with the model on one thread (``--threads 1``: a core
  left to the Python stages) and without a client process beside the engine show what the step costs on a
  machine that is not saturated. Run alone.

Writes the "multiview" section of benchmarks/RESULTS.md from every part measured so far in OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
from results import posestream_command, run_posestream, write_section

from posestream.multiview.calibration_file import read_calibration
from posestream.multiview.points3d_file import read_points3d
from posestream.multiview.triangulate import triangulate
from posestream.multiview.views import join_views, read_view

HERE = Path(__file__).resolve().parent
SESSION = Path(
    os.environ.get(
        "POSESTREAM_ANIPOSE_SESSION",
        HERE.parents[1] / "shared" / "data" / "sleap-anipose" / "minimal_session",
    )
)
CAMERAS = ("back", "mid", "side", "top")


def calibration(out: Path) -> None:
    """Both calibrations, and the stored corners triangulated with each."""
    board = SESSION / "board.toml"
    figures = {}
    for way, extra in (
        ("images", []),
        ("stored corners", ["--corners", SESSION / "calibration.metadata.h5"]),
    ):
        toml = out / f"calibration_{way.replace(' ', '_')}.toml"
        run_posestream("calibrate", SESSION, "--board", board, "-o", toml, "--quiet", *extra)
        report = json.loads(toml.with_suffix(".report.json").read_text())
        figures[way] = {**_stored_corners(toml), "report": report}
    (out / "calibration.json").write_text(json.dumps(figures, indent=2))


def _stored_corners(toml: Path) -> dict:
    """sleap-anipose's detected corners triangulated with ``toml``: board spacing, reprojection by camera."""
    from posestream.multiview.board import read_board
    from posestream.multiview.calibrate_command import board_spacing

    rig = read_calibration(toml).select(list(CAMERAS))
    with h5py.File(SESSION / "calibration.metadata.h5", "r") as f:
        corners = f["detected_corners"][:]
    spacing = board_spacing(rig, corners, read_board(SESSION / "board.toml"))
    errors = triangulate(rig, corners, threshold_px=None).reprojection_error.reshape(len(CAMERAS), -1)
    return {
        "spacing": spacing,
        "reprojection_median": dict(zip(CAMERAS, np.nanmedian(errors, axis=1).tolist())),
    }


def labels(out: Path) -> None:
    """The proofread labels triangulated with our calibration from the images."""
    rig = read_calibration(out / "calibration_images.toml").select(list(CAMERAS))
    files = {c: SESSION / c / f"minimal_{c}_proofread.analysis.h5" for c in CAMERAS}
    views = join_views([read_view(c, f) for c, f in files.items()])
    every = triangulate(rig, views.pixels, views.scores, threshold_px=None)
    robust = triangulate(rig, views.pixels, views.scores, threshold_px=20.0)
    solved_from = np.where(robust.used, robust.reprojection_error, np.nan)
    points = every.points[:, 0]  # (F, N, 3), one mouse
    lengths = np.linalg.norm(points[:, [a for a, _ in views.skeleton.edges]] - points[:, [b for _, b in
                             views.skeleton.edges]], axis=-1)  # fmt: skip
    cv = np.nanstd(lengths, axis=0) / np.nanmean(lengths, axis=0)
    theirs = read_points3d(SESSION / "points3d.h5").points[:, 0]
    figures = {
        "reprojection_median_every": dict(zip(CAMERAS, _median_by_camera(every.reprojection_error))),
        "reprojection_median_used": dict(zip(CAMERAS, _median_by_camera(solved_from))),
        "observations_left_out": int(
            (robust.cameras_seen - robust.cameras_used)[robust.cameras_used > 0].sum()
        ),
        "observations": int(robust.cameras_seen.sum()),
        "edges": [f"{views.skeleton.nodes[a]}-{views.skeleton.nodes[b]}" for a, b in views.skeleton.edges],
        "length_cv": cv.tolist(),
        "length_mean": np.nanmean(lengths, axis=0).tolist(),
        "aligned_distance_to_sleap_anipose": _aligned_distance(points, theirs),
    }
    (out / "labels.json").write_text(json.dumps(figures, indent=2))


def _median_by_camera(errors: np.ndarray) -> list[float]:
    flat = errors.reshape(errors.shape[0], -1)
    return [float(np.nanmedian(e)) for e in flat]


def _aligned_distance(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Distance between two 3D point sets (F, N, 3) after the similarity transform that best maps ours on
    theirs (Umeyama): median and p90, in their units."""
    both = np.isfinite(ours).all(-1) & np.isfinite(theirs).all(-1)
    a, b = ours[both], theirs[both]
    ma, mb = a.mean(0), b.mean(0)
    u, s, vt = np.linalg.svd((b - mb).T @ (a - ma) / len(a))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / ((a - ma) ** 2).sum(1).mean()
    distance = np.linalg.norm(scale * (a - ma) @ rotation.T + mb - b, axis=1)
    return {
        "median": float(np.median(distance)),
        "p90": float(np.percentile(distance, 90)),
        "scale": float(scale),
    }


def synthetic(out: Path) -> None:
    """A 4-camera synthetic scene triangulated against its 3D truth."""
    from posestream.multiview.synth_scene import SceneConfig, scene_poses

    scene = out / "scene"
    if not (scene / "truth3d.h5").exists():
        run_posestream(
            "synth",
            scene,
            "--cameras",
            4,
            "--animals",
            2,
            "--num-frames",
            1000,
            "--jitter",
            1.5,
            "--no-video",
            "--quiet",
        )
    names = [f"cam{c}" for c in range(4)]
    inputs = [f"{n}={scene / f'{n}.detections.h5'}" for n in names]
    run_posestream(
        "triangulate", "--calibration", scene / "calibration.toml", "-o", scene / "points3d.h5", *inputs
    )
    truth = read_points3d(scene / "truth3d.h5").points  # (F, A, N, 3)
    found = read_points3d(scene / "points3d.h5").points
    distance = np.nanmedian(np.linalg.norm(found[:, :, None] - truth[:, None], axis=-1), axis=-1)  # (F, A, A)
    nearest = distance.argmin(axis=-1)  # (F, A): the animal each 3D track lies nearest, frame by frame
    animal = np.array([np.bincount(n, minlength=2).argmax() for n in nearest.T])  # each 3D track's animal
    crossed = int((nearest != animal).any(axis=1).sum()) + (len(set(animal)) != 2) * len(nearest)
    error = np.linalg.norm(found[:, np.argsort(animal)] - truth, axis=-1)  # (F, A, N)
    _, body = scene_poses(SceneConfig(frames=1, animals=2))
    figures = {"error_median": float(np.median(error)), "error_p90": float(np.percentile(error, 90)),
               "body_length": body, "frames": int(truth.shape[0]), "crossed": crossed}  # fmt: skip
    (out / "synthetic.json").write_text(json.dumps(figures, indent=2))


def throughput(out: Path, frames: int) -> None:
    """``posestream triangulate`` of 4 synthetic views, end to end (its own process) and alone (here)."""
    rig = read_calibration(out / "calibration_images.toml").select(list(CAMERAS))
    inputs = []
    with h5py.File(SESSION / "calibration.metadata.h5", "r") as f:
        board = triangulate(rig, f["detected_corners"][:], threshold_px=None).points
    truth = _random_walk(frames, np.nanmean(board.reshape(-1, 3), axis=0))  # (F, 2, 15, 3)
    rng = np.random.default_rng(1)
    for camera in rig.cameras:
        path = out / f"views_{frames}" / f"{camera.name}.h5"
        if not path.exists():
            _write_view(path, camera.project(truth) + rng.normal(0, 1.5, (*truth.shape[:3], 2)))
        inputs.append(f"{camera.name}={path}")
    summary = out / f"throughput_{frames}.json"
    start = time.perf_counter()
    run_posestream("triangulate", "--calibration", out / "calibration_images.toml", "-o", out / "t3d.h5",
                   "--json", summary, *inputs)  # fmt: skip
    wall = time.perf_counter() - start
    figures = json.loads(summary.read_text())
    views = join_views([read_view(c.name, out / f"views_{frames}" / f"{c.name}.h5") for c in rig.cameras])
    start = time.perf_counter()
    triangulate(rig, views.pixels, views.scores)
    alone = time.perf_counter() - start
    error = np.linalg.norm(read_points3d(out / "t3d.h5").points - truth, axis=-1)
    figures.update(
        {
            "wall_seconds": wall,
            "alone_seconds": alone,
            "frames": frames,
            "error_median": float(np.median(error)),
        }
    )
    summary.write_text(json.dumps(figures, indent=2))


def _random_walk(frames: int, middle: np.ndarray, seed: int = 0) -> np.ndarray:
    """Two animals of 15 nodes wandering within 40 mm of ``middle`` (3,) (F, 2, 15, 3), mm."""
    rng = np.random.default_rng(seed)
    centers = np.cumsum(rng.normal(0, 1.0, (frames, 2, 3)), axis=0)
    centers = 40 * np.tanh(centers / 40) + middle + [[-20.0, 0.0, 0.0], [20.0, 0.0, 0.0]]
    body = rng.uniform(-15, 15, (2, 15, 3))
    return centers[:, :, None] + body[None]


def _write_view(path: Path, pixels: np.ndarray) -> None:
    """An analysis HDF5 in SLEAP's layout of ``pixels`` (F, T, N, 2), tracks "animal_0", "animal_1"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n_frames, n_tracks, n_nodes, _ = pixels.shape
    with h5py.File(path, "w") as f:
        f["tracks"] = pixels.transpose(1, 3, 2, 0).astype(np.float32)  # (T, 2, N, F)
        f["track_occupancy"] = np.ones((n_frames, n_tracks), np.uint8)
        f["point_scores"] = np.ones((n_tracks, n_nodes, n_frames), np.float32)
        f["instance_scores"] = np.ones((n_tracks, n_frames), np.float32)
        f["tracking_scores"] = np.ones((n_tracks, n_frames), np.float32)
        f["track_names"] = np.array([f"animal_{t}".encode() for t in range(n_tracks)])
        f["node_names"] = np.array([f"node{n}".encode() for n in range(n_nodes)])
        f["edge_inds"] = np.array([[n, n + 1] for n in range(n_nodes - 1)], np.int32)


# (animals, Hz, the model's threads: 0 every core, 1 leaves a core to the Python stages, a client process
# recording what is published); 4 cameras at 30 Hz are more frames than the demo model serves on 2 cores
LIVE_RUNS = (
    *((animals, rate, threads, True) for animals, rate, threads in
      ((1, 30.0, 0), (2, 30.0, 0), (1, 20.0, 0), (1, 30.0, 1), (2, 30.0, 1), (1, 20.0, 1))),
    (1, 30.0, 0, False),
    (2, 30.0, 0, False),
)  # fmt: skip


def live(out: Path) -> None:
    """Live 3D from 4 cameras (the processes: see the module docstring)."""
    for animals, rate, threads, listening in LIVE_RUNS:
        scene = out / f"live_scene_{animals}"
        if not (scene / "cam3.mp4").exists():
            run_posestream("synth", scene, "--cameras", 4, "--camera-size", "384x384", "--animals", animals,
                           "--num-frames", 900, "--seed", 40 + animals, "--quiet")  # fmt: skip
        name = (
            f"live_{animals}_{rate:g}hz"
            + (f"_{threads}t" if threads else "")
            + ("" if listening else "_alone")
        )
        run = out / name
        if (out / f"{run.name}.json").exists():  # measured before: delete it to measure again
            continue
        run.mkdir(exist_ok=True)
        cameras, poses = f"ipc://{run / 'cameras'}", f"ipc://{run / 'poses'}"
        engine = subprocess.Popen(posestream_command(
            "live", "-m", "demo", "--camera", cameras, "--publish", poses, "--calibration",
            scene / "calibration.toml", "--tracking", "--max-tracks", animals, "--stats-json",
            run / "stats.json", "--threads", threads, "--quiet"))  # fmt: skip
        client = listening and subprocess.Popen(posestream_command(
            "listen", poses, "-o", run / "listened.h5", "--quiet", "--idle-timeout", 10))  # fmt: skip
        videos = [scene / f"cam{c}.mp4" for c in range(4)]
        run_posestream("camera-sim", *videos, "--address", cameras, "--rate", rate, "--wait", 120)
        engine.send_signal(signal.SIGINT)
        if engine.wait(60) != 0 or (client and client.wait(60) != 0):
            raise SystemExit(f"live ({engine.returncode}) or listen failed")
        figures = json.loads((run / "stats.json").read_text())
        if client:
            with h5py.File(run / "listened.3d.h5") as f:
                figures["client_groups"] = int(f["points3d"].shape[0])
        figures["animals"], figures["rate"], figures["threads"] = animals, rate, threads
        (out / f"{run.name}.json").write_text(json.dumps(figures, indent=2))


def table(out: Path) -> list[str]:
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    lines = ["## Several cameras in 3D (issue 27)", ""]
    lines += [f"`python benchmarks/multiview.py` ({machine}). sleap-anipose's minimal_session: 4 cameras, "
              "1280x1024, one mouse.", ""]  # fmt: skip
    if (out / "calibration.json").exists():
        lines += _calibration_table(json.loads((out / "calibration.json").read_text()))
    if (out / "labels.json").exists():
        lines += _labels_table(json.loads((out / "labels.json").read_text()))
    if (out / "synthetic.json").exists():
        lines += _synthetic_line(json.loads((out / "synthetic.json").read_text()))
    for path in sorted(out.glob("throughput_*.json")):
        lines += _throughput_line(json.loads(path.read_text()))
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("live_*.json"))]
    if runs:
        lines += _live_table(runs)
    return lines


def _live_table(runs: list[dict]) -> list[str]:
    lines = [
        "**Live 3D (bar 4: every group triangulated, drops counted exactly, the 3D step <= 1 ms p99).** 4 "
        "synthetic cameras (384x384) at 30 Hz from `camera-sim`, `posestream live -m demo --calibration "
        "--tracking`, `posestream listen -o` (or no client); each its own process. Latencies in ms, capture "
        "to publication.",
        "",
        "| animals | Hz | model threads | frames sent | received | dropped | camera→2D p50 / p99 | groups "
        "published (partial) | frames grouped / late | client's groups | 3D step p50 / p99 (CPU p99) | "
        "camera→3D p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in runs:
        cameras, d = f["cameras"].values(), f["steps"]["three_d"]
        sent, received, dropped = (
            sum(c[k] for c in cameras) for k in ("frames_sent", "frames_received", "frames_dropped")
        )
        p50, p99 = (max(c["latency_ms"][k] for c in cameras) for k in ("p50", "p99"))
        step, latency = d["step_ms"], d["latency_ms"]
        client = f"{f['client_groups']:,}" if "client_groups" in f else "no client"
        lines.append(
            f"| {f['animals']} | {f['rate']:g} | {f.get('threads') or 'every core'} | {sent:,} | "
            f"{received:,} | {dropped:,} | {p50:.1f} / {p99:.1f} | {d['groups_published']:,} "
            f"({d['groups_partial']}) | {d['frames_grouped']:,} / {d['frames_late']} | {client} | "
            f"{step['p50']:.2f} / {step['p99']:.2f} ({d['step_cpu_ms']['p99']:.2f}) | "
            f"{latency['p50']:.1f} / {latency['p99']:.1f} |"
        )
    return lines + [""]


def _synthetic_line(f: dict) -> list[str]:
    share = f["error_median"] / f["body_length"]
    return [
        "**Synthetic truth (bar 3: 3D error median <= 1% of the body length).** `posestream synth "
        f"--cameras 4` (2 animals, {f['frames']:,} frames, 1280x1024), 2D truth perturbed by 1.5 px: 3D "
        f"error median {f['error_median']:.2f} mm, p90 {f['error_p90']:.2f} mm, body length "
        f"{f['body_length']:.0f} mm: **{share:.2%}**. Frames where a 3D track lies nearer the other "
        f"animal: {f['crossed']} of {f['frames']:,} (each camera's tracks named, and ordered, its own way: "
        "matched across views by geometry).",
        "",
    ]


def _throughput_line(f: dict) -> list[str]:
    end_to_end, alone = f["frames"] / f["wall_seconds"], f["frames"] / f["alone_seconds"]
    return [
        "**Throughput (bar 5: >= 20,000 frames/s).** `posestream triangulate` of 4 cameras x "
        f"{f['frames']:,} frames x 2 animals x 15 nodes: {end_to_end:,.0f} frames/s end to end (its own "
        f"process, {f['wall_seconds']:.1f} s: start, reading, writing); {alone:,.0f} frames/s for the "
        f"triangulation alone. 3D error median {f['error_median']:.2f} mm (1.5 px noise).",
        "",
    ]


def _calibration_table(figures: dict) -> list[str]:
    lines = [
        "**Calibration (bar 1).** `posestream calibrate`, then the corners sleap-anipose detected, "
        "triangulated with it: adjacent corners against their 24 mm (bar: median <= 0.1 mm, p90 <= 0.5 mm), "
        "reprojection error median per camera (bar: <= 1.5 px, side included).",
        "",
        "| corners from | adjacent, median (mm) | p90 (mm) | " + " | ".join(CAMERAS) + " (px) |",
        "|---|---:|---:|" + "---:|" * len(CAMERAS),
    ]
    for way, f in figures.items():
        cells = [f"{f['spacing']['median_abs_error']:.3f}", f"{f['spacing']['p90_abs_error']:.3f}"]
        cells += [f"{f['reprojection_median'][c]:.2f}" for c in CAMERAS]
        lines.append(f"| {way} | {' | '.join(cells)} |")
    focal = figures["images"]["report"]["cameras"]
    listed = ", ".join(f"{c} {focal[c]['focal_px']:.1f}" for c in CAMERAS)
    lines += [
        "",
        f"Focal lengths (px, from images): {listed}. sleap-anipose's file gives side top's (964.7).",
        "",
    ]
    return lines


def _labels_table(f: dict) -> list[str]:
    every, used = f["reprojection_median_every"], f["reprojection_median_used"]
    cv = np.array(f["length_cv"])
    distance = f["aligned_distance_to_sleap_anipose"]
    left_out = f"outliers > 20 px left out: {f['observations_left_out']} of {f['observations']}"
    return [
        "**Proofread labels (bar 2: reprojection median <= 3 px per camera).** 4 views, 120 frames, 15 "
        "nodes, triangulated with our calibration (from images):",
        "",
        "| reprojection error median (px) | " + " | ".join(CAMERAS) + " |",
        "|---|" + "---:|" * len(CAMERAS),
        "| every observation | " + " | ".join(f"{every[c]:.2f}" for c in CAMERAS) + " |",
        f"| the observations each point was solved from ({left_out}) | "
        + " | ".join(f"{used[c]:.2f}" for c in CAMERAS)
        + " |",
        "",
        f"Edge lengths over the 120 frames: coefficient of variation median {np.median(cv):.3f} (range "
        f"{cv.min():.3f}-{cv.max():.3f}, {len(cv)} edges). Distance to sleap-anipose's points3d.h5 after a "
        f"similarity alignment: median {distance['median']:.1f} mm, p90 {distance['p90']:.1f} mm (scale "
        f"{distance['scale']:.3f}).",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="calibration,labels,synthetic,throughput,live")
    parser.add_argument("--frames", type=int, default=100_000, help="frames of the throughput part")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "multiview")
    args = parser.parse_args()
    if not SESSION.exists():
        raise SystemExit(
            f"{SESSION} not found: set POSESTREAM_ANIPOSE_SESSION to sleap-anipose's minimal_session"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    if "calibration" in parts:
        calibration(args.out)
    if "labels" in parts:
        labels(args.out)
    if "synthetic" in parts:
        synthetic(args.out)
    if "throughput" in parts:
        throughput(args.out, args.frames)
    if "live" in parts:
        live(args.out)
    write_section("multiview", table(args.out))


if __name__ == "__main__":
    main()
