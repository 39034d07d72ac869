"""Whole archives with ``posestream batch``, on this host (2 cores, CPU onnxruntime, the demo model).

    python benchmarks/batch.py [--only throughput,ray-cost,fault,resume]

- throughput: 12 synthetic videos (384x384, 2 animals, 300 to 2,000 frames, 13,800 in all), tracked
  (``--tracking --max-tracks 2``). Baseline: ``track()`` on each video one after another, in one process
  (no start-up cost counted against it). Against it, the whole ``posestream batch --jobs 2`` command
  (start-up, model loading and Ray's start included) with ``--engine local`` and ``--engine ray``. Every
  output is compared array by array with the baseline's.
- ray-cost: Ray's fixed cost: ``ray.init`` and the workers ready (models loaded), then the scheduling cost
  per unit, from 24 ten-frame videos run by both engines ((ray - local) / units).
- fault: ``posestream batch --engine ray``; one Ray worker process is SIGKILLed mid-run (found by its
  process title, as an out-of-memory killer would pick it). The run must complete, with every output
  identical to the baseline and each video done exactly once in the manifest.
- resume: ``posestream batch`` interrupted (SIGINT) halfway, then the same command again: only what was
  left is done (its time against a full run), and the outputs are identical.
- long: one 20,000-frame video (2 animals, a keyframe at least every 250 frames), tracked, whole
  (``track``) and with ``batch --split-frames 5000 --jobs 2``: poses compared frame by frame, and the
  identity switches at each cut (the split output's identities against the whole run's, just before and
  just after the cut).

Writes the "batch" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from results import posestream_command, write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "batch"
LENGTHS = np.linspace(300, 2000, 12).round().astype(int).tolist()
TRACKING = ["--tracking", "--max-tracks", "2"]


def archive() -> Path:
    """The 12 videos, in two folders (made once)."""
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    folder = OUT / "archive"
    for i, frames in enumerate(LENGTHS):
        path = folder / f"day{i % 2}" / f"cam{i:02d}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic_video(
                path,
                SynthConfig(frames=frames, width=384, height=384, animals=2, seed=i),
                slp=False,
                progress=False,
            )
    return folder


def videos(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.mp4"))


BASELINE = """
import sys, time
from pathlib import Path
from posestream.engine.commands.track import TrackOptions, track
from posestream.engine.tracking import TrackerConfig
options = TrackOptions(progress=False, tracking=TrackerConfig(max_tracks=2))
root, out = Path(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
for video in sorted(root.rglob("*.mp4")):
    track(video, ["demo"], out / (video.relative_to(root).as_posix() + ".h5"), options)
print(time.perf_counter() - started)
"""


def baseline(folder: Path) -> float:
    """track() on each video one after another in one process: seconds (outputs under OUT/baseline)."""
    shutil.rmtree(OUT / "baseline", ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, folder, OUT / "baseline"], check=True, capture_output=True, text=True
    )
    return float(done.stdout.split()[-1])


def batch_command(folder: Path, out: Path, *extra) -> list[str]:
    return posestream_command(
        "batch", folder, "-m", "demo", "-o", out, "--jobs", 2, "--quiet", *TRACKING, *extra
    )


def timed_batch(folder: Path, out: Path, *extra) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(batch_command(folder, out, *extra), check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def identical(folder: Path, out: Path) -> bool:
    """Every batch output equals the baseline's output of the same video (poses, identities, status)."""
    from posestream.engine.sinks import read_analysis_h5

    for video in videos(folder):
        relative = video.relative_to(folder).as_posix()
        mine = read_analysis_h5(out / (relative + ".predictions.h5"))
        ref = read_analysis_h5(OUT / "baseline" / (relative + ".h5"))
        same = (
            np.array_equal(mine.tracks, ref.tracks, equal_nan=True)
            and mine.track_names == ref.track_names
            and np.array_equal(mine.frame_status, ref.frame_status)
        )
        if not same:
            print(f"DIFFERENT: {relative}")
            return False
    return True


def manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def throughput(folder: Path, results: dict) -> None:
    frames = sum(LENGTHS)
    results["baseline_s"] = baseline(folder)
    for engine in ("local", "ray"):
        seconds = timed_batch(folder, OUT / engine, "--engine", engine)
        results[engine] = {"seconds": seconds, "identical": identical(folder, OUT / engine)}
        print(
            f"{engine}: {seconds:.1f} s ({frames / seconds:.1f} FPS) vs baseline "
            f"{results['baseline_s']:.1f} s",
            flush=True,
        )


def ray_cost(results: dict) -> None:
    """ray.init and workers ready; scheduling per unit from tiny videos."""
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    tiny = OUT / "tiny"
    for i in range(24):
        path = tiny / f"t{i:02d}.mp4"
        if not path.exists():
            write_synthetic_video(
                path, SynthConfig(frames=10, width=384, height=384, seed=i), slp=False, progress=False
            )
    probe = (
        "import time, ray; from posestream.engine.batch.ray_engine import RayEngine; from "
        "posestream.engine.commands.track import TrackOptions; t = time.perf_counter(); ray.init(num_cpus=2, "
        "include_dashboard=False, log_to_driver=False); a = time.perf_counter(); e = RayEngine(['demo'], "
        "TrackOptions(workers=1, progress=False), 2); e.start(); b = time.perf_counter(); print(a - t, b - "
        "a); e.close(); ray.shutdown()"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    results["ray_init_s"], results["ray_workers_ready_s"] = map(float, done.stdout.split()[-2:])
    local = timed_batch(tiny, OUT / "tiny_local", "--engine", "local")
    ray = timed_batch(tiny, OUT / "tiny_ray", "--engine", "ray")
    results["tiny"] = {"local_s": local, "ray_s": ray, "units": 24}


def fault(folder: Path, results: dict) -> None:
    """SIGKILL one Ray worker mid-run; the run completes, outputs identical, each unit done once."""
    out = OUT / "fault"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    run = subprocess.Popen(
        batch_command(folder, out, "--engine", "ray"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    while run.poll() is None and killed is None:
        time.sleep(0.5)
        if (out / "manifest.jsonl").exists() and len(manifest_lines(out)) >= 3:
            workers = [
                line.split(None, 1)
                for line in subprocess.run(
                    ["ps", "-eo", "pid,args"], capture_output=True, text=True
                ).stdout.splitlines()
            ]
            busy = [int(pid) for pid, args in workers[1:] if "ray::_Worker.run" in args]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed = time.perf_counter() - started
    stdout, stderr = run.communicate(timeout=1800)
    lines = manifest_lines(out)
    done = [line["unit"] for line in lines if line["status"] == "done"]
    results["fault"] = {
        "killed_at_s": killed,
        "returncode": run.returncode,
        "seconds": time.perf_counter() - started,
        "done_once": sorted(done) == sorted(v.relative_to(folder).as_posix() for v in videos(folder)),
        "identical": identical(folder, out),
        "manifest_lines": len(lines),
    }
    print("fault:", results["fault"], flush=True)


def resume(folder: Path, results: dict) -> None:
    """SIGINT the driver halfway, then the same command again."""
    out = OUT / "resume"
    shutil.rmtree(out, ignore_errors=True)
    full = results.get("local", {}).get("seconds") or timed_batch(folder, OUT / "local", "--engine", "local")
    command = batch_command(folder, out, "--engine", "local")
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(full / 2)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=120)
    first = manifest_lines(out)
    frames_done = sum(line["frames"] for line in first if line["status"] == "done")
    started = time.perf_counter()
    again = subprocess.run(command, capture_output=True, text=True)
    second = time.perf_counter() - started
    redone = manifest_lines(out)[len(first) :]
    results["resume"] = {
        "interrupt_rc": run.returncode,
        "full_s": full,
        "second_s": second,
        "frames_done_before": frames_done,
        "frames_left": sum(LENGTHS) - frames_done,
        "units_second_run": len(redone),
        "returncode": again.returncode,
        "identical": identical(folder, out),
    }
    print("resume:", results["resume"], flush=True)


LONG_FRAMES, SPLIT = 20_000, 5000
LONG_TRACK = """
import sys, time
from posestream.engine.commands.track import TrackOptions, track
from posestream.engine.tracking import TrackerConfig
started = time.perf_counter()
track(sys.argv[1], ["demo"], sys.argv[2], TrackOptions(progress=False, tracking=TrackerConfig(max_tracks=2)))
print(time.perf_counter() - started)
"""


def long_video(results: dict) -> None:
    """20,000 frames whole and in parts: same poses; identity switches at the cuts."""
    from posestream.engine.batch.stitch import same_instances
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    folder = OUT / "long"
    video = folder / "in" / "long.mp4"
    if not video.exists():
        write_synthetic_video(
            video,
            SynthConfig(frames=LONG_FRAMES, width=384, height=384, animals=2, seed=20),
            slp=False,
            progress=False,
        )
    whole = folder / "whole.h5"
    done = subprocess.run(
        [sys.executable, "-c", LONG_TRACK, video, whole], check=True, capture_output=True, text=True
    )
    whole_s = float(done.stdout.split()[-1])
    split_s = timed_batch(folder / "in", folder / "split", "--engine", "local", "--split-frames", SPLIT)
    split = folder / "split" / "long.mp4.predictions.h5"
    from posestream.engine.sinks import read_analysis_h5

    a, b = read_analysis_h5(whole), read_analysis_h5(split)
    cuts = [int(p.split("-")[1]) + 1 for p in b.provenance["parts"][:-1]]  # each part's first own frame
    same_poses = all(
        np.array_equal(np.sort(a.tracks[i].ravel()), np.sort(b.tracks[i].ravel()), equal_nan=True)
        for i in range(LONG_FRAMES)
    )
    switches = []
    for cut in cuts:
        before = _identity_map(a.frame(cut - 1), b.frame(cut - 1), same_instances)
        after = _identity_map(a.frame(cut), b.frame(cut), same_instances)
        switches.append(sum(before.get(k) != v for k, v in after.items()))
    results["long"] = {
        "frames": LONG_FRAMES,
        "split_frames": SPLIT,
        "whole_s": whole_s,
        "split_s": split_s,
        "cuts": cuts,
        "same_poses": bool(same_poses),
        "switches_at_cuts": switches,
        "identical": bool(np.array_equal(a.tracks, b.tracks, equal_nan=True)),
    }
    print("long:", results["long"], flush=True)


def _identity_map(whole, split, same_instances) -> dict[int, int]:
    """The whole run's identity -> the split run's, for the instances both have in one frame."""
    return {int(whole.track_ids[i]): int(split.track_ids[j]) for i, j in same_instances(whole, split)}


def report(results: dict) -> None:
    frames = sum(LENGTHS)
    base = results.get("baseline_s")
    lines = [
        "## Batch runs (posestream batch)",
        "",
        f"`python benchmarks/batch.py` ({os.cpu_count()} cores, CPU onnxruntime, the demo model, "
        "`--tracking --max-tracks 2`). "
        f"12 synthetic 384x384 videos of 300 to 2,000 frames ({frames} frames) in two folders.",
        "",
    ]
    if base:
        lines += [
            "| run | seconds | FPS | vs track one after another (bar >= 0.9) | outputs identical |",
            "|---|---:|---:|---:|---|",
            f"| `track()` per video, one after another, one process | {base:.1f} | {frames / base:.1f} | "
            "1.00 | (reference) |",
        ]
        for engine in ("local", "ray"):
            r = results[engine]
            ratio = base / r["seconds"]
            lines.append(
                f"| `posestream batch --jobs 2 --engine {engine}` (whole command) | {r['seconds']:.1f} | "
                f"{frames / r['seconds']:.1f} | {ratio:.2f} ({'met' if ratio >= 0.9 else 'NOT met'}) | "
                f"{'yes' if r['identical'] else 'NO'} |"
            )
        lines.append("")
    if "ray_init_s" in results:
        tiny = results["tiny"]
        start = results["ray_init_s"] + results["ray_workers_ready_s"]
        per_unit = (tiny["ray_s"] - tiny["local_s"] - start) / tiny["units"]
        lines += [
            f"Ray's fixed cost: `ray.init` (a local Ray) {results['ray_init_s']:.1f} s; two workers placed "
            f"with their models loaded {results['ray_workers_ready_s']:.1f} s more. 24 ten-frame videos: "
            f"local {tiny['local_s']:.1f} s, Ray {tiny['ray_s']:.1f} s (whole commands): after the start, "
            f"{per_unit * 1000:.0f} ms more per unit on Ray (scheduling, results, progress polls, and Ray's "
            "own processes on the same 2 cores).",
            "",
        ]
    if "fault" in results:
        f = results["fault"]
        ok = f["returncode"] == 0 and f["done_once"] and f["identical"]
        lines += [
            f"Fault: one Ray worker SIGKILLed {f['killed_at_s']:.1f} s into the run: the run completed (exit "
            f"{f['returncode']}) in {f['seconds']:.1f} s; each video done exactly once in the manifest: "
            f"{'yes' if f['done_once'] else 'NO'}; outputs identical: {'yes' if f['identical'] else 'NO'} "
            f"(bar: {'met' if ok else 'NOT met'}).",
            "",
        ]
    if "resume" in results:
        r = results["resume"]
        ok = r["returncode"] == 0 and r["identical"]
        lines += [
            f"Resume: SIGINT halfway (exit {r['interrupt_rc']}) with {r['frames_done_before']} frames in "
            f"finished videos; the same command again ran {r['units_second_run']} videos ({r['frames_left']} "
            f"frames left) in {r['second_s']:.1f} s against {r['full_s']:.1f} s for a full run (the videos "
            "interrupted half-way went on from their last flushed frame); outputs identical: "
            f"{'yes' if r['identical'] else 'NO'} (bar: {'met' if ok else 'NOT met'}).",
            "",
        ]
    if "long" in results:
        r = results["long"]
        worst = max(r["switches_at_cuts"], default=0)
        lines += [
            f"Long video: {r['frames']} frames, tracked: whole (`track`) {r['whole_s']:.1f} s; `batch "
            f"--split-frames {r['split_frames']} --workers 2` {r['split_s']:.1f} s (whole command), cuts at "
            f"{r['cuts']}; same poses on every frame: {'yes' if r['same_poses'] else 'NO'}; identity "
            f"switches at each cut {r['switches_at_cuts']} (bar <= 1 per cut: "
            f"{'met' if worst <= 1 else 'NOT met'}); the whole output identical: "
            f"{'yes' if r['identical'] else 'no'}.",
            "",
        ]
    write_section("batch", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="throughput,ray-cost,fault,resume,long")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder = archive()
    results_file = OUT / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    parts = args.only.split(",")
    if "throughput" in parts:
        throughput(folder, results)
    if "ray-cost" in parts:
        ray_cost(results)
    if "fault" in parts:
        if not (OUT / "baseline").exists():
            results["baseline_s"] = baseline(folder)
        fault(folder, results)
    if "resume" in parts:
        resume(folder, results)
    if "long" in parts:
        long_video(results)
    results_file.write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
