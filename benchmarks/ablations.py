"""Ablations: what online hard keypoint mining, the foreground and PAF weights, and DeepLabCut's augmentation
give.

    python benchmarks/ablations.py [--minutes 10] [--only centered_instance,bottomup,single_instance]
        [--out DIR]

Each row trains one network for --minutes of CPU time with one setting changed from its profile and scores
held-out frames (OKS mAP, ``posestream evaluate``): the loss rows (issue 25) on the fly labels (frames 0-879,
SLEAP's published model's poses; held out 880-1099), the augmentation rows (issue 26, bar 4) on the dancer's
(single-instance, frames 0-359; held out 360-449). Augmentation: the profile's (rotation, scale, translation,
brightness, contrast, noise) against DeepLabCut's crop sampling (hybrid, 160-pixel squares at the fitted
input scale 0.375: the dancer's frames are 272x160 there, so crops cut along the body) plus its kernels
(Gaussian and motion blur, sharpening, edge enhancement at DeepLabCut's shares).

Centered-instance rows are scored as a top-down pair with one centroid network (anchor thorax), trained once
for the same minutes and shared by every row, so a difference between rows is the centered-instance
network's. Each model has a row of its profile at a second seed: the difference is the run-to-run noise a
change has to beat.

``--rows`` runs some rows only (their names in lower case, words joined by ``_``: ``profile,ohkm``);
``--centroid RUN`` shares a centroid network trained already (e.g. the learning curve's) instead of training
one.

Resumable: a row whose run and scores exist in OUT is not trained again. Writes each model's section
("ablations-MODEL-MINUTESmin") of benchmarks/RESULTS.md after each of its rows: runs of other lengths
keep their own tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from accuracy import DANCER, FLIES, evaluate, train
from results import add_centroid_option, checked_centroid, refuse_unknown, sleap_files, write_section

HERE = Path(__file__).resolve().parent
# model -> (labels and video, training frames, held-out frames)
DATA = {
    "centered_instance": (FLIES, "0-879", "880-1099"),
    "bottomup": (FLIES, "0-879", "880-1099"),
    "single_instance": (DANCER, "0-359", "360-449"),
}
THORAX = "head.anchor_part=thorax"
DLC_AUGMENTATION = [
    "augment.crop_sampling=hybrid",
    "augment.crop_size=160",
    "augment.blur_ratio=0.1",
    "augment.motion_blur_ratio=0.1",
    "augment.sharpen_ratio=0.3",
    "augment.edge_ratio=0.1",
]
# model -> (row name, settings changed from the profile)
ROWS = {
    "centered_instance": [
        ("profile", []),
        ("profile, seed 1", ["seed=1"]),
        ("OHKM", ["optim.ohkm=true"]),
        ("no foreground weight", ["optim.foreground_weight=0"]),
        ("touching animals drawn 3 times", ["data.contact_repeats=3"]),
        ("touching animals drawn 3 times, seed 1", ["data.contact_repeats=3", "seed=1"]),
    ],
    "bottomup": [
        ("profile", []),
        ("profile, seed 1", ["seed=1"]),
        ("OHKM", ["optim.ohkm=true"]),
        ("PAF weight 0.5", ["optim.paf_weight=0.5"]),
        ("PAF weight 2", ["optim.paf_weight=2"]),
    ],
    "single_instance": [
        ("profile", []),
        ("crop sampling + kernels (DeepLabCut)", DLC_AUGMENTATION),
        ("profile, seed 1", ["seed=1"]),
    ],
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def score_row(model: str, name: str, settings: list[str], out: Path, minutes: float, centroid: Path) -> dict:
    """Train the row's network (once) and score it on the held-out frames (once)."""
    files, frames, held_out = DATA[model]
    labels, video = sleap_files(*files)
    run, scores = out / model / slug(name), out / model / f"{slug(name)}.json"
    anchor = [THORAX] if model == "centered_instance" else []
    train(labels, run, model, frames, video, minutes, *anchor, *settings)
    if not scores.exists():
        runs = [centroid, run] if model == "centered_instance" else [run]
        evaluate(runs, labels, held_out, video, scores)
    return json.loads(scores.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per network")
    parser.add_argument("--only", default="centered_instance,bottomup,single_instance")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "ablations")
    parser.add_argument("--rows", help="only these rows (e.g. profile,ohkm); default: every row")
    add_centroid_option(parser)
    args = parser.parse_args()
    args.centroid = checked_centroid(parser, args.centroid)
    models = args.only.split(",")
    if args.rows:
        known = [slug(name) for model in models for name, _ in ROWS[model]]
        refuse_unknown(parser, "--rows", args.rows.split(","), known)
    centroid = args.centroid or args.out / "centroid"
    if "centered_instance" in models and not args.centroid:  # the top-down rows' shared centroid network
        (labels, video), frames = sleap_files(*FLIES), DATA["centered_instance"][1]
        train(labels, centroid, "centroid", frames, video, args.minutes, THORAX)
    for model in models:
        lines = [
            "| change (from the profile) | `--set` | held-out mAP | against the profile |",
            "|---|---|---:|---:|",
        ]
        base = None
        for name, settings in ROWS[model]:
            if args.rows and slug(name) not in args.rows.split(","):
                continue
            mAP = score_row(model, name, settings, args.out, args.minutes, centroid)["mAP"]
            base = mAP if base is None else base
            change = "" if not settings else f"{mAP - base:+.3f}"
            lines.append(f"| {name} | {' '.join(settings)} | {mAP:.3f} | {change} |")
            print(lines[-1], flush=True)
            write_table(model, args, lines)


def write_table(model: str, args: argparse.Namespace, lines: list[str]) -> None:
    """The model's section, rewritten after each of its rows."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    files, frames, held_out = DATA[model]
    minutes = args.minutes
    shared = "; the rows share one centroid network" if model == "centered_instance" else ""
    chosen = (f" --rows {args.rows}" if args.rows else "") + (
        f" --centroid {args.centroid}" if args.centroid else ""
    )
    write_section(
        f"ablations-{model}-{minutes:g}min",
        [
            f"### Ablations: {model} (issue {26 if model == 'single_instance' else 25})",
            "",
            f"`python benchmarks/ablations.py --minutes {minutes:g} --only {model}{chosen}` ({machine}). "
            f"Each row: one network trained {minutes:g} CPU minutes on {files[0]} frames {frames} with one "
            f"setting changed, scored on {held_out}{shared}. The seed-1 row is the run-to-run noise.",
            "",
            *lines,
        ],
    )


if __name__ == "__main__":
    main()
