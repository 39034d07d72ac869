"""The learning curve: held-out OKS mAP against CPU minutes of training, ours and sleap-nn's.

    python benchmarks/convergence.py [--points 5,10,20,40,80,160] [--only topdown,bottomup] [--out DIR]

Flies (centered_pair_predictions.slp, SLEAP's published model's poses on every frame): each model trains on
frames 0-879 and is scored on the held-out frames 880-1099 at every budget point.

- Ours: the top-down pair (centroid + centered-instance, anchor thorax) and the bottom-up model, with the
  profiles' defaults. A model is trained once, to each point in turn: ``train --resume RUN --max-minutes P``
  continues the run (the budget counts its whole training), so the cosine schedule stretches to each new
  deadline, starting half-way down it at every doubling, and the run at P has had exactly P minutes of
  training. The score at P is the run's best.pt (best validation mAP so far). Top-down minutes are per
  network: the pair at P has trained 2P CPU minutes in all.
- sleap-nn 0.3.5's curve (its sample configurations at the same points, in a venv of its own) is not in
  this script yet: the table and the plot take it as a second engine (``scores["sleap_nn"]``).

It is a long job (hours): run it in the background, with its output in a file. It is resumable: the scores so
far are kept in OUT/scores.json and a point already scored is not trained again, so a stopped run continues
where it was. The table goes to benchmarks/RESULTS.md between the convergence markers and the curve to
benchmarks/convergence.png.
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
TRAIN_FRAMES, HELD_OUT = "0-879", "880-1099"
THORAX = ("--set", "head.anchor_part=thorax")
# curve -> the run directories (profiles) it trains, scored together
CURVES = {"topdown": ["centroid", "centered_instance"], "bottomup": ["bottomup"]}
TARGET = 0.80  # bar 3: top-down within 160 CPU minutes


def fly_data() -> tuple[Path, Path]:
    """The fly labels and video, from POSESTREAM_SLEAP_DATA or ../shared/data/sleap."""
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    labels, video = data / "centered_pair_predictions.slp", data / "centered_pair_small.mp4"
    for path in (labels, video):
        if not path.exists():
            sys.exit(f"{path} not found: set POSESTREAM_SLEAP_DATA to the folder with the SLEAP data")
    return labels, video


def trained_minutes(run: Path) -> float:
    """Minutes of training a run has had (its log's epochs; 0 before the first)."""
    log = run / "training_log.csv"
    if not log.exists():
        return 0.0
    with log.open() as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60


def train_to(profile: str, run: Path, minutes: float) -> None:
    """Train (or continue) ``run`` until it has trained ``minutes`` in all."""
    labels, video = fly_data()
    if trained_minutes(run) >= 0.98 * minutes:
        return
    anchor = THORAX if profile != "bottomup" else ()
    if (run / "last.pt").exists():
        run_posestream("train", "--resume", run, "--max-minutes", f"{minutes:g}", "--quiet")
        return
    run_posestream(
        "train", labels, "-o", run, "--profile", profile, "--frames", TRAIN_FRAMES, "--video-path", video,
        "--max-minutes", f"{minutes:g}", "--quiet", *anchor,
    )  # fmt: skip


def score(predictions: list[Path], out: Path) -> dict:
    """``posestream evaluate`` of run directories or a predictions file on the held-out frames."""
    labels, video = fly_data()
    run_posestream(
        "evaluate", *predictions, "--labels", labels, "--frames", HELD_OUT, "--video-path", video,
        "--json", out,
    )  # fmt: skip
    return json.loads(out.read_text())


def ours(curve: str, points: list[float], out: Path, scores: dict) -> None:
    """Train the curve's networks to each point in turn and score them there."""
    runs = [out / "ours" / profile for profile in CURVES[curve]]
    for point in points:
        key = f"{point:g}"
        if key in scores.setdefault("ours", {}).setdefault(curve, {}):
            continue
        for profile, run in zip(CURVES[curve], runs):
            train_to(profile, run, point)
        metrics = score(runs, out / "ours" / f"{curve}_{key}min.json")
        scores["ours"][curve][key] = {"mAP": metrics["mAP"], "minutes": [trained_minutes(r) for r in runs]}
        save(scores, out)
        print(f"ours {curve} at {key} min: held-out mAP {metrics['mAP']:.3f}", flush=True)


def save(scores: dict, out: Path) -> None:
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    write_results(scores)


def write_results(scores: dict) -> None:
    """The table (one row per engine and curve, one column per point) and the PNG."""
    points = sorted({float(p) for engine in scores.values() for c in engine.values() for p in c})
    header = "| engine | model | " + " | ".join(f"{p:g} min" for p in points) + " |"
    lines = [header, "|---|---|" + "---:|" * len(points)]
    for engine, curves in scores.items():
        for curve, by_point in curves.items():
            cells = [by_point.get(f"{p:g}", {}).get("mAP") for p in points]
            row = " | ".join("" if c is None else f"{c:.3f}" for c in cells)
            lines.append(f"| {ENGINES[engine]} | {curve} | {row} |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, CPU only"
    write_section(
        "convergence",
        [
            "## The learning curve (issue 25, bar 3)",
            "",
            f"`python benchmarks/convergence.py` ({machine}). Held-out OKS mAP (flies, frames {HELD_OUT}, "
            f"trained on {TRAIN_FRAMES}) after each budget of training minutes per network (the top-down "
            "pair: that many for each of its two networks). Goal: top-down >= "
            f"{TARGET:.2f} within 160 minutes, above sleap-nn at every point.",
            "",
            *lines,
            "",
            "![mAP against CPU minutes](convergence.png)",
        ],
    )
    plot(scores)


ENGINES = {"ours": "posestream", "sleap_nn": "sleap-nn 0.3.5"}


def plot(scores: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for engine, curves in scores.items():
        for curve, by_point in curves.items():
            points = sorted(by_point, key=float)
            style = "-o" if engine == "ours" else "--s"
            label = f"{ENGINES[engine]}, {curve}"
            axes.plot([float(p) for p in points], [by_point[p]["mAP"] for p in points], style, label=label)
    axes.axhline(TARGET, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("CPU minutes of training per network (2 cores)")
    axes.set_ylabel(f"held-out OKS mAP (flies {HELD_OUT})")
    axes.set_ylim(0, 1)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(HERE / "convergence.png", dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="5,10,20,40,80,160", help="budget points, minutes")
    parser.add_argument("--only", default="topdown,bottomup")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "convergence")
    args = parser.parse_args()
    points = sorted(float(p) for p in args.points.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    file = args.out / "scores.json"
    scores = json.loads(file.read_text()) if file.exists() else {}
    for curve in args.only.split(","):
        ours(curve, points, args.out, scores)


if __name__ == "__main__":
    main()
