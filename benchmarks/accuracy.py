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
import csv
import json
import os
import platform
import sys
from pathlib import Path

from results import run_posestream, write_section

HERE = Path(__file__).resolve().parent
TARGETS = {"topdown": 0.60, "bottomup": 0.50, "single_instance": 0.50}


def train(
    labels: Path, out: Path, profile: str, frames: str, video: Path, minutes: float, *sets: str
) -> None:
    if (out / "best.pt").exists():
        print(f"{out} exists; reusing it")
        return
    run_posestream(
        "train",
        str(labels),
        "-o",
        str(out),
        "--profile",
        profile,
        "--frames",
        frames,
        "--video-path",
        str(video),
        "--max-minutes",
        str(minutes),
        "--quiet",
        *[a for s in sets for a in ("--set", s)],
    )


def evaluate(runs: list[Path], labels: Path, frames: str, video: Path, out: Path) -> None:
    run_posestream(
        "evaluate",
        *map(str, runs),
        "--labels",
        str(labels),
        "--frames",
        frames,
        "--video-path",
        str(video),
        "--json",
        str(out),
    )


# key: (row name, held-out frames, run directories whose training it includes)
MODELS = {
    "topdown": (
        "top-down (centroid + centered-instance)",
        "flies 880-1099",
        ["centroid", "centered_instance"],
    ),
    "bottomup": ("bottom-up", "flies 880-1099", ["bottomup"]),
    "single_instance": ("single-instance", "dance 360-449", ["single_instance"]),
}


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
    out, minutes = args.out, args.minutes
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.only.split(",")
    if "topdown" in wanted:
        train(
            fly_labels, out / "centroid", "centroid", "0-879", fly_video, minutes, "head.anchor_part=thorax"
        )
        train(
            fly_labels,
            out / "centered_instance",
            "centered_instance",
            "0-879",
            fly_video,
            minutes,
            "head.anchor_part=thorax",
        )
        evaluate(
            [out / "centroid", out / "centered_instance"],
            fly_labels,
            "880-1099",
            fly_video,
            out / "topdown.json",
        )
    if "bottomup" in wanted:
        train(fly_labels, out / "bottomup", "bottomup", "0-879", fly_video, minutes)
        evaluate([out / "bottomup"], fly_labels, "880-1099", fly_video, out / "bottomup.json")
    if "single_instance" in wanted:
        train(dance_labels, out / "single_instance", "single_instance", "0-359", dance_video, minutes)
        evaluate(
            [out / "single_instance"], dance_labels, "360-449", dance_video, out / "single_instance.json"
        )
    write_table(out, minutes)


def training_minutes(run_dir: Path) -> float:
    """Wall-clock minutes of a run's epochs, from its training log."""
    with (run_dir / "training_log.csv").open() as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60


def write_table(out: Path, budget: float) -> None:
    """One row per model evaluated so far in ``out`` (results of earlier runs of this script included)."""
    lines = [
        "| model | held-out frames | training (min) | OKS mAP | target | mAR | PCK@5px | error p50 / p90 "
        "(px) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, (name, frames, runs) in MODELS.items():
        if not (out / f"{key}.json").exists():
            continue
        m = json.loads((out / f"{key}.json").read_text())
        spent = " + ".join(f"{training_minutes(out / r):.1f}" for r in runs)
        err = m["error_percentiles"]
        lines.append(
            f"| {name} | {frames} | {spent} | {m['mAP']:.3f} | {TARGETS[key]:.2f} | {m['mAR']:.3f} | "
            f"{m['pck']['5px']:.2f} | {err['p50']:.2f} / {err['p90']:.2f} |"
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, CPU only"
    write_section(
        "accuracy",
        [
            "## Accuracy (training issue)",
            "",
            f"`python benchmarks/accuracy.py --minutes {budget:g}` ({machine}). Ground truth for the flies "
            "is SLEAP's published model's poses; training minutes are the epochs' wall-clock time per "
            "model.",
            "",
            *lines,
        ],
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
