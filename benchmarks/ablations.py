"""Loss ablations: what online hard keypoint mining, the foreground weight and the PAF weight give.

    python benchmarks/ablations.py [--minutes 10] [--only centered_instance,bottomup] [--out DIR]

Each row trains one network on the fly labels (frames 0-879, SLEAP's published model's poses) for --minutes
of CPU time with one setting changed from its profile, and scores the held-out frames 880-1099 (OKS mAP,
``posestream evaluate``). Centered-instance rows are scored as a top-down pair with one centroid network
(anchor thorax), trained once for the same minutes and shared by every row, so a difference between rows is
the centered-instance network's. The first two rows of each model are its profile at two seeds: their
difference is the run-to-run noise a change has to beat.

Resumable: a row whose run and scores exist in OUT is not trained again. Writes the "ablations" section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from accuracy import evaluate, train
from convergence import fly_data
from results import write_section

HERE = Path(__file__).resolve().parent
TRAIN_FRAMES, HELD_OUT = "0-879", "880-1099"
THORAX = "head.anchor_part=thorax"
# model -> (row name, settings changed from the profile)
ROWS = {
    "centered_instance": [
        ("profile", []),
        ("profile, seed 1", ["seed=1"]),
        ("OHKM", ["optim.ohkm=true"]),
        ("no foreground weight", ["optim.foreground_weight=0"]),
    ],
    "bottomup": [
        ("profile", []),
        ("profile, seed 1", ["seed=1"]),
        ("OHKM", ["optim.ohkm=true"]),
        ("PAF weight 0.5", ["optim.paf_weight=0.5"]),
        ("PAF weight 2", ["optim.paf_weight=2"]),
    ],
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def score_row(model: str, name: str, settings: list[str], out: Path, minutes: float) -> dict:
    """Train the row's network (once) and score it on the held-out frames (once)."""
    labels, video = fly_data()
    run, scores = out / model / slug(name), out / model / f"{slug(name)}.json"
    anchor = [THORAX] if model == "centered_instance" else []
    train(labels, run, model, TRAIN_FRAMES, video, minutes, *anchor, *settings)
    if not scores.exists():
        runs = [out / "centroid", run] if model == "centered_instance" else [run]
        evaluate(runs, labels, HELD_OUT, video, scores)
    return json.loads(scores.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per network")
    parser.add_argument("--only", default="centered_instance,bottomup")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "ablations")
    args = parser.parse_args()
    labels, video = fly_data()
    models = args.only.split(",")
    if "centered_instance" in models:  # the shared centroid network of the top-down rows
        train(labels, args.out / "centroid", "centroid", TRAIN_FRAMES, video, args.minutes, THORAX)
    lines = [
        "| model | change (from the profile) | `--set` | held-out mAP | against the profile |",
        "|---|---|---|---:|---:|",
    ]
    for model in models:
        base = None
        for name, settings in ROWS[model]:
            mAP = score_row(model, name, settings, args.out, args.minutes)["mAP"]
            base = mAP if base is None else base
            change = "" if not settings else f"{mAP - base:+.3f}"
            lines.append(f"| {model} | {name} | {' '.join(settings)} | {mAP:.3f} | {change} |")
            print(lines[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    write_section(
        "ablations",
        [
            "### Loss ablations (issue 25)",
            "",
            f"`python benchmarks/ablations.py --minutes {args.minutes:g}` ({machine}). Each row: one "
            f"network trained {args.minutes:g} CPU minutes on the fly frames {TRAIN_FRAMES} with one setting "
            f"changed, scored on {HELD_OUT}; centered-instance rows share one centroid network. The seed-1 "
            "row is the run-to-run noise.",
            "",
            *lines,
        ],
    )


if __name__ == "__main__":
    main()
