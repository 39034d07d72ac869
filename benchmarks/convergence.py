"""The learning curve: held-out OKS mAP against CPU minutes of training, ours and sleap-nn's.

    python benchmarks/convergence.py [--points 5,10,20,40,80,160] [--only topdown,bottomup] [--out DIR]
        [--engines ours,sleap_nn] [--sleap-nn-python VENV/bin/python] [--sleap-nn-configs DIR]

Flies (centered_pair_predictions.slp, SLEAP's published model's poses on every frame): each model trains on
frames 0-879 and is scored on the held-out frames 880-1099 at every budget point.

- Ours: the top-down pair (centroid + centered-instance, anchor thorax) and the bottom-up model, with the
  profiles' defaults. A model is trained once, to each point in turn: ``train --resume RUN --max-minutes P``
  continues the run (the budget counts its whole training), so the cosine schedule stretches to each new
  deadline, starting half-way down it at every doubling, and the run at P has had exactly P minutes of
  training. The score at P is the run's best.pt (best validation mAP so far). Top-down minutes are per
  network: the pair at P has trained 2P CPU minutes in all.
- sleap-nn 0.3.5 (``--sleap-nn-python``: a venv of its own with ``pip install "sleap-nn[export]==0.3.5"
  torch==2.13.0``, the CPU build): its sample configurations (docs/sample_configs of its 0.3.5 source
  distribution, which ``pip download --no-binary`` fetches into OUT, or ``--sleap-nn-configs DIR``):
  config_bottomup_unet_medium_rf.yaml, config_centroid_unet.yaml and
  config_topdown_centered_instance_unet_medium_rf.yaml (anchor_part thorax for the last two), trained by
  ``sleap-nn train --config CONFIG KEY=VALUE...`` on a copy of the labels holding frames 0-879 (made with
  sleap-io in its venv: the video path set to centered_pair_small.mp4, and SLEAP's predicted instances made
  user instances, since the configs train on user instances only). Overrides beyond the labels and the run
  folder change nothing in training: trainer_accelerator=cpu (its "auto" would take a GPU), no progress bar,
  and model_ckpt.save_last=true (last.ckpt, to resume from). sleap-nn has no time budget of its own, so
  Lightning's ``Trainer(max_time=...)`` is set through Lightning's environment defaults
  (``PL_TRAINER_MAX_TIME``): its Timer stops training at the first step past the deadline, then validates
  and saves. Like ours, one run is continued to each point (``trainer_config.resume_ckpt_path=RUN/last.ckpt``
  restores the weights, the optimizer, the LR-on-plateau and early-stopping states, and the Timer's elapsed
  time, so ``max_time`` counts the whole run), and the minutes recorded are the Timer's at the end: more than
  P, since the validation after the deadline counts (with sleap-nn's OKS evaluation of the validation
  frames, slow on a young bottom-up model: 100 s for the 88 frames on 2 cores after one step). sleap-nn
  continues a run in a new folder (RUN-1) when RUN holds a best.ckpt, so best.ckpt is set aside while the run
  continues in RUN and put back unless a better one (lower validation loss than the run's best, which the
  checkpoint callback restores) was saved. A run that stopped on its own (early stopping, or max_epochs)
  is not continued. At P, ``sleap-nn predict -i centered_pair_small.mp4 -m RUN... --frames 880-1099 -d cpu``
  (its best.ckpt: lowest validation loss) writes a .slp that ``posestream evaluate`` scores like ours.

  The runner runs sleap-nn's own CLI with two shims: torchvision's meta registrations are skipped (where the
  registry's torchvision wheel is built for CUDA torch, sleap-nn fails at import without it; neither
  training nor inference here uses those ops), and ``sleap-nn train`` stops after fitting: its post-training
  prediction and evaluation of the whole train and validation splits (CPU minutes a point, outside the
  budget, no effect on the weights) is skipped.

  What differs between the two (the engines' own defaults, not aligned here): input scale (ours fitted to
  the animals' size by train/fit.py; sleap-nn's configs: bottom-up 1.0, centroid 0.5, centered-instance
  crops at 1.0 sized from the labels), augmentation (ours: rotation +-180 degrees, scale, translation,
  brightness, contrast, noise; sleap-nn's: rotation +-15 degrees and scale 0.9-1.1 only), the validation
  split (both a random 10% of the 880 training frames, drawn by different generators: not the same frames),
  which checkpoint is scored (ours best validation mAP, sleap-nn's best validation loss), the stopping rules
  (sleap-nn's early stopping and max_epochs can end a run before the budget: its minutes are then less than
  P), the per-epoch extras inside the budget (sleap-nn: validation, its OKS evaluation of the validation
  frames and its prediction pictures, as its configs set them). Both predict at most 8 animals a frame (ours:
  ``data.max_instances``; sleap-nn: ``--max_instances``).

It is a long job (hours): run it in the background, with its output in a file. It is resumable: the scores so
far are kept in OUT/scores.json and a point already scored is not trained again, so a stopped run continues
where it was. The table goes to benchmarks/RESULTS.md between the convergence markers and the curve to
benchmarks/convergence.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

from accuracy import FLIES
from results import SLEAP_NN_SHIM, run_posestream, sleap_files, trained_minutes, write_section

HERE = Path(__file__).resolve().parent
TRAIN_FRAMES, HELD_OUT = "0-879", "880-1099"
ANCHOR = "thorax"
THORAX = ("--set", f"head.anchor_part={ANCHOR}")
# curve -> the run directories (profiles) it trains, scored together
CURVES = {"topdown": ["centroid", "centered_instance"], "bottomup": ["bottomup"]}
TARGET = 0.80  # bar 3: top-down within 160 CPU minutes
MAX_INSTANCES = 8  # per frame at prediction: ours caps at data.max_instances (8), sleap-nn's is told the same


def fly_data() -> tuple[Path, Path]:
    """The fly labels and video."""
    labels, video = sleap_files(*FLIES)
    return labels, video


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


SLEAP_NN_VERSION = "0.3.5"
# run (profile) -> sleap-nn's sample configuration, docs/sample_configs in its source distribution
SLEAP_NN_CONFIGS = {
    "bottomup": "config_bottomup_unet_medium_rf.yaml",
    "centroid": "config_centroid_unet.yaml",
    "centered_instance": "config_topdown_centered_instance_unet_medium_rf.yaml",
}
SLEAP_NN_RUNNER = (
    SLEAP_NN_SHIM
    + """import os
if sys.argv[1:2] == ["train"]:
    import sleap_nn.train
    from sleap_nn.training.model_trainer import ModelTrainer

    def fit_only(config, train_labels=None, val_labels=None):
        job = ModelTrainer.get_model_trainer_from_config(config, train_labels, val_labels)
        job.train()
        timer = next(c for c in job.trainer.callbacks if type(c).__name__ == "Timer")
        with open(os.environ["POSESTREAM_TRAINED_SECONDS"], "w") as f:
            f.write(str(timer.time_elapsed("train")))

    sleap_nn.train.run_training = fit_only
from sleap_nn.cli import cli
cli()
"""
)
# argv: labels, video, last training frame, output .slp
SLEAP_NN_LABELS = """import sys
import sleap_io as sio
source, video, last, target = sys.argv[1:]
labels = sio.load_slp(source)
labels.replace_filenames(new_filenames=[video])
kept = []
for frame in labels.labeled_frames:
    if frame.frame_idx <= int(last):
        frame.instances = [
            sio.Instance.from_numpy(i.numpy(), skeleton=i.skeleton, track=i.track)
            if isinstance(i, sio.PredictedInstance) else i
            for i in frame.instances
        ]
        kept.append(frame)
labels.labeled_frames = kept
sio.save_slp(labels, target)
print(f"{target}: {len(kept)} frames, {sum(len(f.instances) for f in kept)} instances")
"""


def run_sleap_nn(python: str, out: Path, *args, env: dict | None = None) -> None:
    """``sleap-nn ARGS`` through the runner in ``out`` (echoed); a failure stops the script."""
    command = [python, str(out / "runner.py"), *map(str, args)]
    print("$", *(f"{k}={v}" for k, v in (env or {}).items()), " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, **(env or {})})


def sleap_nn_setup(python: str, out: Path, configs: Path | None) -> tuple[Path, Path]:
    """The runner, sleap-nn's sample configurations and the training labels in ``out``: (configs folder,
    training labels)."""
    labels, video = fly_data()
    out.mkdir(parents=True, exist_ok=True)
    (out / "runner.py").write_text(SLEAP_NN_RUNNER)
    if configs is None:
        configs = out / "sample_configs"
        if not all((configs / name).exists() for name in SLEAP_NN_CONFIGS.values()):
            fetch_sample_configs(python, out, configs)
    for name in SLEAP_NN_CONFIGS.values():
        if not (configs / name).exists():
            sys.exit(f"{configs / name} not found: give sleap-nn's docs/sample_configs as --sleap-nn-configs")
    last = int(TRAIN_FRAMES.split("-")[1])
    train = out / f"train_{TRAIN_FRAMES}.slp"
    if not train.exists():
        script = out / "make_labels.py"
        script.write_text(SLEAP_NN_LABELS)
        subprocess.run([python, str(script), labels, video.resolve(), str(last), train], check=True)
    return configs, train


def fetch_sample_configs(python: str, out: Path, configs: Path) -> None:
    """docs/sample_configs of sleap-nn's source distribution (pip download, by its venv's pip)."""
    sdist = out / "sdist"
    subprocess.run(
        [
            python, "-m", "pip", "download", "--no-deps", "--no-binary", "sleap-nn", "--no-build-isolation",
            "-d", sdist, f"sleap-nn=={SLEAP_NN_VERSION}",
        ],
        check=True,
    )  # fmt: skip
    configs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(next(sdist.glob("sleap_nn-*.tar.gz"))) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if name in SLEAP_NN_CONFIGS.values() and "docs/sample_configs/" in member.name:
                (configs / name).write_bytes(tar.extractfile(member).read())


def sleap_nn_minutes(run: Path) -> float:
    """Minutes of training a sleap-nn run has had (the Lightning Timer's at its last stop; 0 before)."""
    state = run / "posestream_budget.json"
    return json.loads(state.read_text())["minutes"] if state.exists() else 0.0


def sleap_nn_train_to(python: str, out: Path, profile: str, run: Path, minutes: float, setup: tuple) -> None:
    """Train (or continue) the sleap-nn ``run`` until it has trained ``minutes`` in all, unless it stopped
    on its own (early stopping, max_epochs) short of the budget it was given last."""
    configs, train = setup
    state = run / "posestream_budget.json"
    done = json.loads(state.read_text()) if state.exists() else {"requested": 0.0, "minutes": 0.0}
    if done["minutes"] >= 0.98 * minutes:
        return
    if done["requested"] and done["minutes"] < 0.98 * done["requested"]:
        print(f"sleap-nn {profile}: stopped on its own at {done['minutes']:.1f} min, not continued")
        return
    overrides = [
        f"data_config.train_labels_path=['{train}']",
        f"trainer_config.ckpt_dir='{run.parent}'",
        f"trainer_config.run_name='{run.name}'",
        "trainer_config.trainer_accelerator=cpu",
        "trainer_config.enable_progress_bar=false",
        "trainer_config.model_ckpt.save_last=true",
    ]
    if profile != "bottomup":
        overrides.append(f"model_config.head_configs.{profile}.confmaps.anchor_part={ANCHOR}")
    settle_best(run)
    if (run / "last.ckpt").exists():
        overrides.append(f"trainer_config.resume_ckpt_path='{run / 'last.ckpt'}'")
        if (run / "best.ckpt").exists():  # else sleap-nn would continue in a new folder, RUN-1
            (run / "best.ckpt").replace(run / "best.previous.ckpt")
    seconds = out / f"{profile}_trained_seconds.txt"
    seconds.unlink(missing_ok=True)
    env = {"PL_TRAINER_MAX_TIME": repr({"seconds": minutes * 60}), "POSESTREAM_TRAINED_SECONDS": str(seconds)}
    run_sleap_nn(python, out, "train", "--config", configs / SLEAP_NN_CONFIGS[profile], *overrides, env=env)
    settle_best(run)
    trained = float(seconds.read_text()) / 60
    state.write_text(json.dumps({"requested": minutes, "minutes": trained}))


def settle_best(run: Path) -> None:
    """best.ckpt set aside for a continuation back in place, unless the continuation saved a better one (its
    checkpoint callback, restored from last.ckpt, saves only a lower validation loss than the run's best)."""
    previous = run / "best.previous.ckpt"
    if previous.exists():
        if (run / "best.ckpt").exists():
            previous.unlink()
        else:
            previous.replace(run / "best.ckpt")


def sleap_nn(
    curve: str, points: list[float], out: Path, scores: dict, python: str, configs: Path | None
) -> None:
    """sleap-nn's networks of the curve trained to each point in turn, predicted and scored there."""
    folder = out / "sleap_nn"
    setup = sleap_nn_setup(python, folder, configs)
    runs = [folder / profile for profile in CURVES[curve]]
    _, video = fly_data()
    for point in points:
        key = f"{point:g}"
        if key in scores.setdefault("sleap_nn", {}).setdefault(curve, {}):
            continue
        for profile, run in zip(CURVES[curve], runs):
            sleap_nn_train_to(python, folder, profile, run, point, setup)
        predictions = folder / f"{curve}_{key}min.slp"
        models = [a for run in runs for a in ("-m", run)]
        run_sleap_nn(
            python, folder, "predict", "-i", video, *models, "--frames", HELD_OUT, "-d", "cpu",
            "--max_instances", MAX_INSTANCES, "-o", predictions,
        )  # fmt: skip
        metrics = score([predictions], folder / f"{curve}_{key}min.json")
        minutes = [sleap_nn_minutes(r) for r in runs]
        scores["sleap_nn"][curve][key] = {"mAP": metrics["mAP"], "minutes": minutes}
        save(scores, out)
        print(f"sleap-nn {curve} at {key} min: held-out mAP {metrics['mAP']:.3f}", flush=True)


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
            *(
                [
                    "",
                    "sleap-nn 0.3.5: its sample configurations (bottom-up and centered-instance UNet medium "
                    "RF, centroid UNet), one run continued to each point by Lightning's max_time, its "
                    "best.ckpt predicted by `sleap-nn predict`; its minutes include the validation after "
                    "each deadline (scores.json has them). See the script's docstring for what differs.",
                ]
                if "sleap_nn" in scores
                else []
            ),
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
    ticks = sorted({float(p) for curves in scores.values() for by_point in curves.values() for p in by_point})
    axes.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axes.minorticks_off()
    axes.set_xlabel("CPU minutes of training per network (2 cores)")
    axes.set_ylabel(f"held-out OKS mAP (flies {HELD_OUT})")
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(HERE / "convergence.png", dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="5,10,20,40,80,160", help="budget points, minutes")
    parser.add_argument("--only", default="topdown,bottomup")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "convergence")
    parser.add_argument(
        "--engines", help="ours,sleap_nn (default: ours, and sleap_nn when --sleap-nn-python is given)"
    )
    parser.add_argument("--sleap-nn-python", help="python of a venv with sleap-nn[export]==0.3.5")
    parser.add_argument(
        "--sleap-nn-configs",
        type=Path,
        help="sleap-nn's docs/sample_configs (default: from its source distribution, fetched into OUT)",
    )
    args = parser.parse_args()
    engines = (args.engines or ("ours,sleap_nn" if args.sleap_nn_python else "ours")).split(",")
    unknown = set(engines) - set(ENGINES)
    if unknown:
        sys.exit(f"--engines: unknown {', '.join(sorted(unknown))} (known: {', '.join(ENGINES)})")
    if "sleap_nn" in engines and not args.sleap_nn_python:
        sys.exit("the sleap_nn engine needs --sleap-nn-python VENV/bin/python (a venv with sleap-nn 0.3.5)")
    points = sorted(float(p) for p in args.points.split(","))
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    file = args.out / "scores.json"
    scores = json.loads(file.read_text()) if file.exists() else {}
    for curve in args.only.split(","):
        if "ours" in engines:
            ours(curve, points, args.out, scores)
        if "sleap_nn" in engines:
            sleap_nn(curve, points, args.out, scores, args.sleap_nn_python, args.sleap_nn_configs)


if __name__ == "__main__":
    main()
