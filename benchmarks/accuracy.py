"""Accuracy on real SLEAP data: train each model type on CPU within a time budget, evaluate held-out frames.

    python benchmarks/accuracy.py [--minutes 30] [--only topdown,bottomup,single_instance] [--out DIR]
        [--device cpu|cuda] [--section accuracy]

- Flies (centered_pair_small.mp4 + centered_pair_predictions.slp, SLEAP's published model's
  poses on every frame): train on frames 0-879, evaluate on 880-1099.
  top-down = centroid + centered-instance (anchor: thorax); bottom-up.
- Dancer (dance.mp4 + dance.mp4.labels.slp): single-instance, train 0-359, evaluate 360-449.

Each model trains for at most --minutes of wall-clock time (on 2 CPU cores here; ``--device cuda``:
benchmarks/gpu.py's training part). Metrics go to OUT/*.json and a table to benchmarks/RESULTS.md between
the markers of --section.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
from pathlib import Path

from results import run_posestream, sleap_files, write_section

HERE = Path(__file__).resolve().parent
FLIES = ("centered_pair_predictions.slp", "centered_pair_small.mp4")  # labels, video
DANCER = ("dance.mp4.labels.slp", "dance.mp4")
TARGETS = {"topdown": 0.60, "bottomup": 0.50, "single_instance": 0.50}


def train(
    labels: Path,
    out: Path,
    profile: str,
    frames: str,
    video: Path,
    minutes: float,
    *sets: str,
    device: str = "cpu",
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
        "--device",
        device,
        "--quiet",
        *[a for s in sets for a in ("--set", s)],
    )


def evaluate(
    runs: list[Path], labels: Path, frames: str, video: Path, out: Path, device: str = "cpu"
) -> None:
    run_posestream(
        "evaluate",
        *map(str, runs),
        "--device",
        device,
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
    parser.add_argument("--device", default="cpu", help="where the networks train and run: cpu, cuda")
    parser.add_argument("--section", default="accuracy", help="the RESULTS.md section the table goes to")
    args = parser.parse_args()
    measure(args.out, args.minutes, args.only.split(","), args.device, args.section)


def measure(
    out: Path, minutes: float, wanted: list[str], device: str = "cpu", section: str = "accuracy"
) -> None:
    """Train the ``wanted`` models (MODELS' keys) for ``minutes`` each on ``device``, score them, and write
    the table of every model scored in ``out`` to the RESULTS.md ``section``."""
    fly_labels, fly_video, dance_labels, dance_video = sleap_files(*FLIES, *DANCER)
    out.mkdir(parents=True, exist_ok=True)
    on = {"device": device}
    thorax = "head.anchor_part=thorax"
    if "topdown" in wanted:
        train(fly_labels, out / "centroid", "centroid", "0-879", fly_video, minutes, thorax, **on)
        train(
            fly_labels,
            out / "centered_instance",
            "centered_instance",
            "0-879",
            fly_video,
            minutes,
            thorax,
            **on,
        )
        pair = [out / "centroid", out / "centered_instance"]
        evaluate(pair, fly_labels, "880-1099", fly_video, out / "topdown.json", **on)
    if "bottomup" in wanted:
        train(fly_labels, out / "bottomup", "bottomup", "0-879", fly_video, minutes, **on)
        evaluate([out / "bottomup"], fly_labels, "880-1099", fly_video, out / "bottomup.json", **on)
    if "single_instance" in wanted:
        single = out / "single_instance"
        train(dance_labels, single, "single_instance", "0-359", dance_video, minutes, **on)
        evaluate([single], dance_labels, "360-449", dance_video, out / "single_instance.json", **on)
    write_table(out, minutes, device, section)


def device_name(device: str) -> str:
    """The GPU's name, from torch (installed where a model trains)."""
    import torch

    return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"


def training_minutes(run_dir: Path) -> float:
    """Wall-clock minutes of a run's epochs, from its training log."""
    with (run_dir / "training_log.csv").open() as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60


def write_table(out: Path, budget: float, device: str = "cpu", section: str = "accuracy") -> None:
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
    if device == "cpu":
        machine, title = (
            f"{platform.machine()}, {os.cpu_count()} cores, CPU only",
            "## Accuracy (training issue)",
        )
        command = f"python benchmarks/accuracy.py --minutes {budget:g}"
    else:
        machine, title = device_name(device), f"### Accuracy after {budget:g} minutes of training on the GPU"
        command = f"python benchmarks/gpu.py --part train --train-minutes {budget:g}"
    write_section(
        section,
        [
            title,
            "",
            f"`{command}` ({machine}). Ground truth for the flies is SLEAP's published model's poses; "
            "training minutes are the epochs' wall-clock time per model.",
            "",
            *lines,
        ],
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
