"""Where the flies touch: trained top-down pairs scored on the held-out frames split by contact.

    python benchmarks/touching.py NAME=CENTROID_RUN,CENTERED_RUN [NAME=...] [--px 10] [--out DIR]

The held-out frames (880-1099 of the fly labels) are split by the smallest distance between the two flies'
points in the labels: "touching" below ``--px`` frame pixels, "apart" the rest. Each pair is scored as a
top-down pair and its centered-instance network alone on the labels' anchors (which leaves the centroid
network out), on all held-out frames, on each subset, and (anchors) on the centered-instance run's own
validation frames (random frames of 0-879, never trained on). It also prints how often the flies touch in
the training frames and in the held-out ones. Writes the "touching" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
from accuracy import FLIES, evaluate
from results import sleap_files, write_section

from posestream.train.contact import frame_gap
from posestream.train.labels import load_labels

HERE = Path(__file__).resolve().parent
TRAIN, HELD_OUT = range(0, 880), range(880, 1100)


def frame_gaps(labels: Path) -> dict[int, float]:
    """Each labelled frame's smallest distance between two animals, frame pixels (inf: one animal)."""
    return {f.frame_idx: frame_gap(f.points) for f in load_labels(labels).frames}


def subsets(gaps: dict[int, float], px: float) -> dict[str, list[int]]:
    held = [i for i in HELD_OUT if i in gaps]
    return {
        "held-out, all": held,
        f"held-out, apart (>= {px:g} px)": [i for i in held if gaps[i] >= px],
        f"held-out, touching (< {px:g} px)": [i for i in held if gaps[i] < px],
    }


def score_pair(name: str, centroid: Path, centered: Path, frames: dict[str, list[int]], out: Path) -> list:
    """Rows (subset, frames, top-down mAP, anchors mAP, anchors error p50) of one pair."""
    labels, video = sleap_files(*FLIES)
    validation = json.loads((centered / "run.json").read_text())["val_frames"]
    rows = []
    for subset, chosen in {"validation frames (of 0-879)": validation, **frames}.items():
        listed = ",".join(map(str, chosen))
        slug = "".join(c if c.isalnum() else "_" for c in f"{name}_{subset}")
        anchors, top_down = out / f"{slug}_anchors.json", out / f"{slug}_topdown.json"
        if not anchors.exists():
            evaluate([centered], labels, listed, video, anchors)
        if not subset.startswith("validation") and not top_down.exists():
            evaluate([centroid, centered], labels, listed, video, top_down)
        alone = json.loads(anchors.read_text())
        pair = json.loads(top_down.read_text())["mAP"] if top_down.exists() else None
        rows.append((subset, len(chosen), pair, alone["mAP"], alone["error_percentiles"]["p50"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", help="NAME=CENTROID_RUN,CENTERED_INSTANCE_RUN")
    parser.add_argument("--px", type=float, default=10.0, help="touching: flies closer than this, pixels")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "touching")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gaps = frame_gaps(sleap_files(*FLIES)[0])
    for part, frames in (("training", TRAIN), ("held-out", HELD_OUT)):
        near = np.array([gaps[i] for i in frames if i in gaps])
        shares = ", ".join(f"{(near < px).mean():.0%} within {px} px" for px in (5, 10, 20))
        print(f"{part} frames: {shares}")
    lines = [
        "### Where the flies touch (issue 25)",
        "",
        f"`python benchmarks/touching.py {' '.join(args.pairs)} --px {args.px:g}` "
        f"({platform.machine()}, {os.cpu_count()} cores)",
        "",
        "| pair | scored on | frames | top-down mAP | centered-instance alone, labels' anchors | "
        "error p50 (anchors) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for pair in args.pairs:
        name, _, runs = pair.partition("=")
        centroid, centered = (Path(p) for p in runs.split(","))
        for subset, n, top_down, alone, p50 in score_pair(
            name, centroid, centered, subsets(gaps, args.px), args.out
        ):
            shown = "" if top_down is None else f"{top_down:.3f}"
            lines.append(f"| {name} | {subset} | {n} | {shown} | {alone:.3f} | {p50:.2f} px |")
            print(lines[-1], flush=True)
    write_section("touching", lines)


if __name__ == "__main__":
    main()
