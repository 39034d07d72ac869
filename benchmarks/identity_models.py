"""Identity (multi-class) models on model output: do they keep every animal's name through crossings?

    python benchmarks/identity_models.py [--animals 2,4] [--minutes 15] [--frames 3000] [--train-frames 1500]
        [--only topdown,bottomup] [--set KEY=VALUE ...] [--centroid RUN] [--out DIR]

For each number of animals, ``posestream synth --identities`` renders a training video (seed 1,
--train-frames) and a test video (seed 2, --frames) with crossings; the animals differ by body shade and
marks on the back. Trained on the first, scored on the second (``posestream evaluate`` against its ground
truth):

- top-down: a centroid network and a ``multi_class_topdown`` network, --minutes each (the pair's CPU minutes
  are twice that); ``track`` with no tracker: identities from the class vectors, matched per frame.
- bottom-up: a ``multi_class_bottomup`` network, twice --minutes (the pair's budget): identities from the
  class maps.
- the pose-only comparison: the same top-down poses, their identities dropped and given by the tracker
  (``retrack --tracking --max-tracks N``), as a pose-only model with ``--tracking`` would give them.

``--set KEY=VALUE`` (repeatable) trains the identity networks with a setting changed from their profile
(e.g. ``data.contact_repeats=3``); their rows then go to a section of their own, beside the profile's.
``--centroid RUN`` shares a centroid network trained already (one animal count only; exported to RUN/model
where its export is missing or stale), so that only the identity network is trained and a difference
between sections is its own.

Columns: each network's training minutes, identity accuracy (the share of matched animals named by their
own track), IDF1 and identity switches (TrackEval, OKS >= 0.5), OKS mAP. Resumable: runs, predictions and
scores already in OUT are kept, and a kept run trained for fewer minutes is continued to --minutes (``train
--resume``), its predictions and scores made again; the table lists every row scored in OUT, so a bottom-up
run can join the top-down rows of an earlier one. Writes one section of benchmarks/RESULTS.md per animal
count ("identity-models-N", with --set "identity-models-N-SETTINGS"; issue 26, bar 1: accuracy and IDF1 >=
0.98, fewer switches than the tracker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path

from results import (
    add_centroid_option,
    checked_centroid,
    run_posestream,
    stale,
    trained_minutes,
    write_section,
)

HERE = Path(__file__).resolve().parent
BAR = 0.98
TOP_DOWN = "multi-class top-down, no tracker"
TRACKER = "the same poses, tracker (pose-only)"
BOTTOM_UP = "multi-class bottom-up, no tracker"


def synth(video: Path, animals: int, frames: int, seed: int) -> None:
    """A video of marked animals and its ground truth (video.analysis.h5), unless already there."""
    if not video.with_suffix(".analysis.h5").exists():
        run_posestream(
            "synth",
            video,
            "--identities",
            "--animals",
            animals,
            "--num-frames",
            frames,
            "--seed",
            seed,
            "--quiet",
        )


def train(labels: Path, run: Path, profile: str, minutes: float, *sets: str) -> Path:
    """A run of ``profile`` trained ``minutes`` in all on ``labels`` (a kept run with fewer is continued),
    exported to run/model; returns the model's metadata.json, whose age tells what was made from it."""
    if not (run / "last.pt").exists():
        extra = [a for s in sets for a in ("--set", s)]
        run_posestream(
            "train", labels, "-o", run, "--profile", profile, "--max-minutes", minutes, "--quiet", *extra
        )
    elif trained_minutes(run) < 0.98 * minutes:
        run_posestream("train", "--resume", run, "--max-minutes", f"{minutes:g}", "--quiet")
    metadata = run / "model" / "metadata.json"
    if stale(metadata, run / "best.pt"):
        run_posestream("export", run, "-o", run / "model")
    return metadata


def shared(run: Path | None) -> Path | None:
    """A centroid run given with --centroid, used as it is (never continued), exported to run/model where
    its export is missing or older than its best.pt: its model's metadata.json."""
    if run is None:
        return None
    metadata = run / "model" / "metadata.json"
    if stale(metadata, run / "best.pt"):
        run_posestream("export", run, "-o", run / "model")
    return metadata


def scored(predictions: Path, truth: Path) -> dict:
    """``evaluate`` of a predictions file against the ground truth (kept beside it as .json)."""
    report = predictions.with_suffix(".json")
    if stale(report, predictions):
        run_posestream("evaluate", predictions, "--labels", truth, "--json", report)
    return json.loads(report.read_text())


def measure(animals: int, args: argparse.Namespace) -> Path:
    """Train and score the --only models of one animal count; returns its folder."""
    out, minutes, frames, train_frames = args.out, args.minutes, args.frames, args.train_frames
    wanted, sets = args.only.split(","), args.set
    folder = out / f"{animals}_animals"
    folder.mkdir(parents=True, exist_ok=True)
    train_video, test_video = folder / "train.mp4", folder / "test.mp4"
    synth(train_video, animals, train_frames, seed=1)
    synth(test_video, animals, frames, seed=2)
    labels, truth = train_video.with_suffix(".analysis.h5"), test_video.with_suffix(".analysis.h5")
    if "topdown" in wanted:
        anchor = "head.anchor_part=spine"
        centroid = shared(args.centroid) or train(labels, folder / "centroid", "centroid", minutes, anchor)
        identity = folder / "multi_class_topdown"
        centered = train(labels, identity, "multi_class_topdown", minutes, anchor, *sets)
        predictions = folder / "topdown.slp"
        if stale(predictions, centroid, centered):
            models = ("-m", centroid.parent, "-m", centered.parent)
            run_posestream("track", "-i", test_video, *models, "-o", predictions, "--quiet")
        retracked = folder / "topdown_retracked.slp"
        if not scored(predictions, truth)["n_predicted"]:
            print(f"{predictions}: no poses, so no tracker row (train longer)", flush=True)
        elif stale(retracked, predictions):
            run_posestream("retrack", predictions, "-o", retracked, "--max-tracks", animals, "--quiet")
        if retracked.exists():
            scored(retracked, truth)
    if "bottomup" in wanted:
        model = train(labels, folder / "multi_class_bottomup", "multi_class_bottomup", 2 * minutes, *sets)
        predictions = folder / "bottomup.slp"
        if stale(predictions, model):
            run_posestream("track", "-i", test_video, "-m", model.parent, "-o", predictions, "--quiet")
        scored(predictions, truth)
    return folder


def kept_rows(folder: Path, centroid: Path | None) -> dict[str, tuple[dict, list[float]]]:
    """Every row scored in ``folder``, by this run or an earlier one: way -> (evaluate's figures, the
    training minutes of each network it took)."""
    top_down = [centroid or folder / "centroid", folder / "multi_class_topdown"]
    rows = {}
    for way, report, runs in (
        (TOP_DOWN, "topdown.json", top_down),
        (TRACKER, "topdown_retracked.json", top_down),
        (BOTTOM_UP, "bottomup.json", [folder / "multi_class_bottomup"]),
    ):
        if (folder / report).exists():
            rows[way] = (json.loads((folder / report).read_text()), [trained_minutes(r) for r in runs])
    return rows


def section(animals: int, sets: list[str]) -> str:
    """The RESULTS section's name: one per animal count, and one per set of changed settings."""
    changed = "-".join(re.sub(r"[^a-z0-9]+", "_", s.lower()) for s in sets)
    return f"identity-models-{animals}" + (f"-{changed}" if changed else "")


def table(animals: int, rows: dict, args: argparse.Namespace) -> list[str]:
    """The RESULTS section of one animal count: its command and its rows, each with its training minutes."""
    frames, train_frames = args.frames, args.train_frames
    options = "".join(f" --set {s}" for s in args.set)
    options += f" --centroid {args.centroid}" if args.centroid else ""
    lines = [
        f"### {animals} animals" + "".join(f", {s}" for s in args.set),
        "",
        f"`python benchmarks/identity_models.py --animals {animals} --minutes {args.minutes:g} --frames "
        f"{frames} --train-frames {train_frames} --only {args.only}{options}` ({platform.machine()}, "
        f"{os.cpu_count()} cores). Trained on one video ({train_frames} frames, seed 1), scored on another "
        f"({frames} frames, seed 2, crossings); rows scored into the same folder by earlier runs are kept. "
        "Training: CPU minutes of each network (top-down: centroid + identity network).",
        "",
        "| identities by | training (min) | identity accuracy | IDF1 | identity switches | OKS mAP |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for way, (m, minutes) in rows.items():
        named = m.get("identity_accuracy") if way != TRACKER else None  # a tracker's names are its own
        cells = [_figure(named, ".4f"), _figure(m.get("idf1"), ".4f"), _figure(m.get("id_switches"), "d")]
        spent = " + ".join(f"{t:.0f}" for t in minutes)
        lines.append(f"| {way} | {spent} | {' | '.join(cells)} | {m['mAP']:.3f} |")
    return lines


def _figure(value, spec: str) -> str:
    """A table cell: the value, or "-" where evaluate had none (no identities predicted)."""
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--animals", default="2,4")
    parser.add_argument("--minutes", type=float, default=15.0, help="per network (bottom-up: twice)")
    parser.add_argument("--frames", type=int, default=3000, help="frames of the test video")
    parser.add_argument("--train-frames", type=int, default=1500)
    parser.add_argument("--only", default="topdown,bottomup")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for the identity networks")
    add_centroid_option(parser)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "identity_models")
    args = parser.parse_args()
    args.centroid = checked_centroid(parser, args.centroid)
    if args.centroid and "," in args.animals:
        parser.error("--centroid: a centroid network is trained for one animal count; give one --animals")
    for animals in map(int, args.animals.split(",")):
        rows = kept_rows(measure(animals, args), args.centroid)
        write_section(section(animals, args.set), table(animals, rows, args))


if __name__ == "__main__":
    main()
