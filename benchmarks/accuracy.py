"""Accuracy on real SLEAP data: train each model type on CPU within a time budget, evaluate held-out frames.

    python benchmarks/accuracy.py [--minutes 30] [--only topdown,bottomup,single_instance] [--out DIR]

- Flies (centered_pair_small.mp4 + centered_pair_predictions.slp, SLEAP's published model's
  poses on every frame): train on frames 0-879, evaluate on 880-1099.
  top-down = centroid + centered-instance (anchor: thorax); bottom-up.
- Dancer (dance.mp4 + dance.mp4.labels.slp): single-instance, train 0-359, evaluate 360-449.

Each model trains for at most --minutes of wall-clock time (on 2 CPU cores here). Metrics go to
OUT/*.json and a table to benchmarks/RESULTS.md between the accuracy markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from results import write_section

HERE = Path(__file__).resolve().parent
TARGETS = {"topdown": 0.60, "bottomup": 0.50, "single_instance": 0.50}


def posestream(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("posestream")), *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def train(labels: Path, out: Path, profile: str, frames: str, video: Path, minutes: float, *sets: str) -> float:
    if (out / "best.pt").exists():
        print(f"{out} exists; reusing it")
        return float("nan")
    start = time.monotonic()
    posestream("train", str(labels), "-o", str(out), "--profile", profile, "--frames", frames,
               "--video-path", str(video), "--max-minutes", str(minutes), "--quiet",
               *[a for s in sets for a in ("--set", s)])  # fmt: skip
    return (time.monotonic() - start) / 60


def evaluate(runs: list[Path], labels: Path, frames: str, video: Path, out: Path) -> dict:
    posestream("evaluate", *map(str, runs), "--labels", str(labels), "--frames", frames,
               "--video-path", str(video), "--json", str(out))  # fmt: skip
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--only", default="topdown,bottomup,single_instance")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "accuracy")
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    fly_labels, fly_video = data / "centered_pair_predictions.slp", data / "centered_pair_small.mp4"
    dance_labels, dance_video = data / "dance.mp4.labels.slp", data / "dance.mp4"
    for path in (fly_labels, fly_video, dance_labels, dance_video):
        if not path.exists():
            sys.exit(f"{path} not found: set POSESTREAM_SLEAP_DATA to the folder with the SLEAP data")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    wanted = args.only.split(",")
    if "topdown" in wanted:
        m1 = train(fly_labels, args.out / "centroid", "centroid", "0-879", fly_video, args.minutes, "head.anchor_part=thorax")
        m2 = train(fly_labels, args.out / "centered_instance", "centered_instance", "0-879", fly_video, args.minutes,
                   "head.anchor_part=thorax")  # fmt: skip
        metrics = evaluate([args.out / "centroid", args.out / "centered_instance"], fly_labels, "880-1099", fly_video,
                           args.out / "topdown.json")  # fmt: skip
        rows.append(("top-down (centroid + centered-instance)", "flies 880-1099", m1 + m2, metrics, "topdown"))
    if "bottomup" in wanted:
        m = train(fly_labels, args.out / "bottomup", "bottomup", "0-879", fly_video, args.minutes)
        metrics = evaluate([args.out / "bottomup"], fly_labels, "880-1099", fly_video, args.out / "bottomup.json")
        rows.append(("bottom-up", "flies 880-1099", m, metrics, "bottomup"))
    if "single_instance" in wanted:
        m = train(dance_labels, args.out / "single_instance", "single_instance", "0-359", dance_video, args.minutes)
        metrics = evaluate([args.out / "single_instance"], dance_labels, "360-449", dance_video,
                           args.out / "single_instance.json")  # fmt: skip
        rows.append(("single-instance", "dance 360-449", m, metrics, "single_instance"))
    write_table(rows, args.minutes)


def write_table(rows: list, minutes: float) -> None:
    lines = [
        "| model | held-out frames | training (min) | OKS mAP | target | mAR | PCK@5px | error p50 / p90 (px) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, frames, spent, m, key in rows:
        err = m["error_percentiles"]
        lines.append(f"| {name} | {frames} | {spent:.1f} | {m['mAP']:.3f} | {TARGETS[key]:.2f} | {m['mAR']:.3f} | "
                     f"{m['pck']['5px']:.2f} | {err['p50']:.2f} / {err['p90']:.2f} |")  # fmt: skip
    machine = f"{platform.machine()}, {os.cpu_count()} cores, CPU only"
    write_section("accuracy", [
        "## Accuracy (training issue)", "",
        f"`python benchmarks/accuracy.py --minutes {minutes:g}` ({machine}). Ground truth for the flies is "
        "SLEAP's published model's poses; training minutes are wall-clock, top-down adds its two models.",
        "", *lines,
    ])  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
