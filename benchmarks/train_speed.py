"""Training throughput per model type: the new defaults against the old path, alternated in one run.

    python benchmarks/train_speed.py [--minutes 1.5] [--rounds 2] [--parts speed,workers,accuracy]

- speed: each model type trains for --minutes with the defaults (bf16 and channels-last where the CPU has
  them, examples made in worker processes from four cores on) and with the old path (``--set
  data.workers=0 --precision fp32``), at the same batch size, the two alternated run by run. Examples per
  second count the training steps only (data wait, forward, backward, optimiser step:
  RUN_DIR/summary.json), and so does the split.
- workers: the defaults with 0, 1 and 2 worker processes, for the two model types whose examples cost the
  most and the least to make (bottom-up, centered-instance): what ``data.workers`` chooses by default.
- accuracy: each group (``--groups``) trained for --epochs epochs both ways, the learning rate annealed
  (cosine) to the last epoch so that few epochs give a model worth scoring, then scored on held-out frames
  (OKS mAP): bf16 must stay within 0.02 of fp32 at equal epochs. The groups: top-down (centroid and
  centered-instance networks, scored as a pair), centered-instance (that network alone, on the labels'
  anchors: the network without the centroid's noise), bottom-up, single-instance. ``--seeds 0,1,2`` trains
  each seed both ways and adds the mean paired difference: two trainings in different arithmetic diverge
  from the first step, so one pair's difference is mostly run-to-run noise. Hours at 20 epochs: resumable
  (a finished run and its scores in OUT are kept). Each --epochs has its own section.

Fly labels (centered_pair_predictions.slp: frames 0-879 to train, 880-1099 held out) for centroid,
centered-instance and bottom-up; the dancer (dance.mp4.labels.slp: 0-359, 360-449) for single-instance.
Tables go to benchmarks/RESULTS.md between the train-speed markers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from accuracy import DANCER, FLIES, evaluate
from results import refuse_unknown, run_posestream, sleap_files, write_section

HERE = Path(__file__).resolve().parent
OLD_PATH = ("--set", "data.workers=0", "--precision", "fp32")
THORAX = ("--set", "head.anchor_part=thorax")
PHASES = ("data", "forward", "backward", "step")


def data_paths() -> dict[str, tuple[Path, Path, str, str]]:
    """Model type -> (labels, video, training frames, held-out frames)."""
    fly_labels, fly_video, dance_labels, dance_video = sleap_files(*FLIES, *DANCER)
    fly = (fly_labels, fly_video, "0-879", "880-1099")
    dance = (dance_labels, dance_video, "0-359", "360-449")
    return {"single_instance": dance, "centroid": fly, "centered_instance": fly, "bottomup": fly}


def train(model: str, out: Path, *extra: str) -> dict:
    """One training run from scratch; its summary.json."""
    labels, video, frames, _ = data_paths()[model]
    shutil.rmtree(out, ignore_errors=True)
    anchor = THORAX if model in ("centroid", "centered_instance") else ()
    run_posestream(
        "train",
        labels,
        "-o",
        out,
        "--profile",
        model,
        "--frames",
        frames,
        "--video-path",
        video,
        "--quiet",
        *anchor,
        *extra,
    )
    return json.loads((out / "summary.json").read_text())


def speed(models: list[str], minutes: float, rounds: int, out: Path) -> list[str]:
    """Alternated runs of the defaults and the old path; the table rows and the phase split rows."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(rounds):
        for model in models:
            ways = [("new", ()), ("old", OLD_PATH)]
            for way, extra in ways if r % 2 == 0 else ways[::-1]:
                summary = train(model, out / f"{model}_{way}", "--max-minutes", str(minutes), *extra)
                runs.setdefault((model, way), []).append(summary)
                print(f"round {r}: {model} {way}: {summary['samples_per_second']:.1f} examples/s", flush=True)
    rows = [
        "| model | batch | old path, examples/s | defaults, examples/s | defaults / old | runs each |",
        "|---|---|---|---|---|---|",
    ]
    split = [
        "| model | path | data | forward | backward | step | arithmetic, workers |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models:
        old, new = (
            statistics.median(s["samples_per_second"] for s in runs[model, w]) for w in ("old", "new")
        )
        batch = runs[model, "new"][0]["batch_size"]
        rows.append(f"| {model} | {batch} | {old:.1f} | {new:.1f} | **{new / old:.2f}x** | {rounds} |")
        for way in ("old", "new"):
            last = runs[model, way][-1]
            total = sum(last["seconds"].values())
            shares = " | ".join(f"{100 * last['seconds'][p] / total:.0f}%" for p in PHASES)
            how = f"{last['precision']}{' channels-last' if last['channels_last'] else ''}, {last['workers']}"
            split.append(f"| {model} | {'defaults' if way == 'new' else 'old path'} | {shares} | {how} |")
    return rows + [""] + split


def workers(minutes: float, out: Path) -> list[str]:
    """The defaults with 0, 1 and 2 worker processes."""
    rows = ["| model | 0 workers | 1 worker | 2 workers |", "|---|---|---|---|"]
    for model in ("bottomup", "centered_instance"):
        rates = []
        for n in (0, 1, 2):
            summary = train(
                model, out / f"{model}_w{n}", "--max-minutes", str(minutes), "--set", f"data.workers={n}"
            )
            rates.append(f"{summary['samples_per_second']:.1f}")
            print(f"{model}, {n} workers: {rates[-1]} examples/s", flush=True)
        rows.append(f"| {model} | " + " | ".join(rates) + " |")
    return rows


# group -> the networks it trains; a group of one centered-instance network is scored on the labels' anchors
GROUPS = {
    "top-down": ["centroid", "centered_instance"],
    "centered-instance": ["centered_instance"],
    "bottom-up": ["bottomup"],
    "single-instance": ["single_instance"],
}


def accuracy(groups: list[str], epochs: int, seeds: list[int], out: Path) -> list[str]:
    """Held-out OKS mAP after ``epochs`` epochs, defaults against fp32, paired by seed; one row a group and
    seed, and a row of the mean difference where there are several seeds."""
    rows = [
        "| model | seed | held-out frames | fp32 (old path) mAP | defaults mAP | difference |",
        "|---|---:|---|---|---|---|",
    ]
    for name in groups:
        frames = data_paths()[GROUPS[name][0]][3]
        diffs = []
        for seed in seeds:
            old, new = (paired_score(name, way, epochs, seed, out) for way in ("old", "new"))
            diffs.append(new - old)
            rows.append(f"| {name} | {seed} | {frames} | {old:.3f} | {new:.3f} | {new - old:+.3f} |")
        if len(seeds) > 1:
            spread = statistics.stdev(diffs)
            rows.append(
                f"| {name} | mean of {len(seeds)} | {frames} | | | "
                f"**{statistics.mean(diffs):+.3f}** (sd {spread:.3f}) |"
            )
    return rows


def paired_score(group: str, way: str, epochs: int, seed: int, out: Path) -> float:
    """Train the group's networks one way (once) and score them together on the held-out frames (once)."""
    tag = f"{way}_e{epochs}" + (f"_s{seed}" if seed else "")  # seed 0 keeps the first runs' names
    extra = (*(OLD_PATH if way == "old" else ()), "--set", f"seed={seed}")
    models = GROUPS[group]
    dirs = [out / f"{m}_{tag}" for m in models]
    for model, run in zip(models, dirs):
        if not trained_epochs(run, epochs):  # resumable: a finished run is kept
            train(model, run, "--max-epochs", str(epochs), "--set", "optim.schedule=cosine", *extra)
    labels, video, _, held_out = data_paths()[models[0]]
    report = out / f"{group}_{tag}.json"
    if not report.exists():
        evaluate(dirs, labels, held_out, video, report)
    return json.loads(report.read_text())["mAP"]


def trained_epochs(run: Path, epochs: int) -> bool:
    """Whether ``run`` finished ``epochs`` epochs (its summary.json)."""
    summary = run / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["epochs"] >= epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.5, help="per speed run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="accuracy part: epochs per run")
    parser.add_argument("--seeds", default="0", help="accuracy part: seeds, each trained both ways (0,1,2)")
    parser.add_argument("--groups", default="top-down,bottom-up,single-instance", help="accuracy part")
    parser.add_argument("--parts", default="speed,workers,accuracy")
    parser.add_argument("--models", default="single_instance,centroid,centered_instance,bottomup")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "train_speed")
    args = parser.parse_args()
    parts = args.parts.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [
        "## Training throughput (issue 25, bar 1)",
        "",
        f"`python benchmarks/train_speed.py --parts {args.parts}`, 2 cores (AVX-512 BF16). Defaults: bf16 "
        "autocast and channels-last, examples made in worker processes from four cores on (none here); old "
        "path: `--set data.workers=0 --precision fp32` (no autocast, NCHW, examples made between steps). "
        "Both share the rest: the fused loss, the allocator setting, the vectorised examples. Same batch "
        f"size (the profile's); {args.minutes:g} min per run, alternated; examples/s over training steps.",
        "",
    ]
    if "speed" in parts or "workers" in parts:
        if "speed" in parts:
            lines += speed(args.models.split(","), args.minutes, args.rounds, args.out) + [""]
        if "workers" in parts:
            lines += ["Worker processes (defaults otherwise), examples/s:", ""] + workers(
                args.minutes, args.out
            )
        write_section("train-speed", lines)
    if "accuracy" in parts:  # its own section: a long part, run on its own
        groups, seeds = args.groups.split(","), [int(s) for s in args.seeds.split(",")]
        refuse_unknown(parser, "--groups", groups, list(GROUPS))
        command = f"--parts accuracy --epochs {args.epochs} --groups {args.groups} --seeds {args.seeds}"
        lines = [f"### Held-out OKS mAP after {args.epochs} epochs each way (issue 25, bar 1)", ""]
        lines += [f"`python benchmarks/train_speed.py {command}`", ""]
        lines += accuracy(groups, args.epochs, seeds, args.out)
        write_section(f"train-speed-accuracy-e{args.epochs}", lines)


if __name__ == "__main__":
    main()
