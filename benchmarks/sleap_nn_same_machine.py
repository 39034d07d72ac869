"""sleap-nn 0.3.5 and posestream on this machine: same-shape networks, the same video, the commands users
type.

    python benchmarks/sleap_nn_same_machine.py --sleap-nn-python /path/to/venv/bin/python

Needs a separate virtual env with ``pip install "sleap-nn[export]==0.3.5" torch==2.13.0`` (kept apart:
posestream's engine needs no torch), and ``benchmarks/same_size.py`` run first (it trains our networks of
sleap-nn's test-model shape: UNet filters 16, rate 1.5, max stride 8, output stride 2). Each engine runs its
own models of that shape over the 1100 frames of centered_pair_small.mp4:

- bottom-up: sleap-nn's test checkpoint (tests/assets/model_ckpts/minimal_instance_bottomup in its
  repository, in ../shared/data/sleap-nn: nodes A and B, PAFs at stride 4) exported with ``sleap-nn export
  --format onnx``, against ours of the same shape trained on the same labels (``bottomup_2node``);
- top-down: sleap-nn's centroid + centered-instance test checkpoints, against ours (``centroid`` +
  ``centered_instance``, trained on the fly video).

sleap-nn runs ``predict --runtime onnx`` (its fastest path); ours ``posestream track`` in fp32 and int8. Each
command is timed whole (start-up included) in its own process, ``REPEATS`` times alternated: median wall
seconds and the largest peak RSS. int8's accuracy: our fly networks of the same shapes, fp32 and int8, on the
held-out fly frames (880-1099) against SLEAP's predictions (``posestream evaluate``, OKS mAP); the bar asks a
precision to lose at most 0.02. same_size.py trains each fly network for 10 minutes on CPU, which leaves the
bottom-up one at 0 mAP, so it is trained on to ACCURACY_MINUTES in all (``train --resume``, once) before it is
scored. int8 is also scored on a trained bottom-up network: the demo model, fp32 against int8, on a held-out
synthetic video with its ground truth. Writes the "sleap-nn-same-machine" section of RESULTS.md.

Where the registry's torchvision wheel is built for CUDA torch (its compiled ops cannot load beside
a CPU torch), sleap-nn fails at import; the runner skips torchvision's meta registrations of those
ops, which neither its export nor its ONNX inference uses.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from results import SLEAP_NN_SHIM, peak_rss_and_seconds, posestream_command, write_section

HERE = Path(__file__).resolve().parent
FRAMES = 1100
RUNNER = (
    SLEAP_NN_SHIM
    + """from sleap_nn.cli import cli
cli()
"""
)
REPEATS = 2
# name: (sleap-nn's checkpoint folders, our model folders in benchmarks/data/same_size by precision)
SETUPS = {
    "bottom-up": (["minimal_instance_bottomup"], ["bottomup_2node"]),
    "top-down": (
        ["minimal_instance_centroid", "minimal_instance_centered_instance"],
        ["centroid", "centered_instance"],
    ),
}
# fly networks, same shapes
ACCURACY = {
    "bottom-up": ["bottomup"],
    "top-down": ["centroid", "centered_instance"],
}
ACCURACY_MINUTES = {"bottomup": 58.0}
"""Training minutes in all a fly network gets before its accuracy is scored: same_size.py's 10 minutes leave
the bottom-up one at 0 held-out mAP (its instances mostly false), which cannot show what int8 loses; 58 bring
it to 0.3."""
HELD_OUT = "880-1099"


def sleap_nn(python: str, out: Path, *args: str) -> list[str]:
    return [python, str(out / "runner.py"), *map(str, args)]


def ours(run: str, precision: str) -> Path:
    """Our exported model of a same_size.py run, exported in ``precision`` if not yet (int8: calibrated on
    the run's own training labels)."""
    model = HERE / "data" / "same_size" / f"{run}_{precision}"
    if not (model / "metadata.json").exists():
        size = [] if run == "centered_instance" else ["--input-size", "384x384"]
        subprocess.run(
            posestream_command(
                "export",
                HERE / "data" / "same_size" / run,
                "-o",
                model,
                "--precision",
                precision,
                "--quiet",
                *size,
            ),
            check=True,
        )
    return model


def trained_long_enough(run: str) -> None:
    """Continue a same_size.py run (``train --resume``) until it has trained ACCURACY_MINUTES in all (the
    budget of a resumed run counts its whole training), and drop its exports made from the earlier
    weights."""
    folder = HERE / "data" / "same_size" / run
    with (folder / "training_log.csv").open() as f:
        spent = sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60
    total = ACCURACY_MINUTES.get(run, 0.0)
    if total - spent > 1.0:
        print(f"training {run} {total - spent:.0f} more minutes (to {total:g} in all) before scoring it")
        subprocess.run(
            posestream_command("train", "--resume", folder, "--max-minutes", f"{total:g}", "--quiet"),
            check=True,
        )
        for precision in ("fp32", "int8"):
            shutil.rmtree(HERE / "data" / "same_size" / f"{run}_{precision}", ignore_errors=True)


def theirs(python: str, out: Path, name: str, ckpts: list[Path]) -> Path:
    """sleap-nn's ONNX export of its checkpoints."""
    onnx_dir = out / f"{name}_onnx"
    if not (onnx_dir / "model.onnx").exists():
        subprocess.run(
            sleap_nn(python, out, "export", *ckpts, "-o", onnx_dir, "--format", "onnx"), check=True
        )
    return onnx_dir


def held_out_map(video: Path, labels: Path, models: list[Path], out: Path) -> float:
    """OKS mAP of ``models`` on the held-out fly frames against SLEAP's predictions."""
    import json

    predictions, report = out.with_suffix(".h5"), out.with_suffix(".json")
    subprocess.run(
        posestream_command(
            "track",
            "-i",
            video,
            *[a for m in models for a in ("-m", m)],
            "--frames",
            HELD_OUT,
            "-o",
            predictions,
            "--quiet",
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        posestream_command(
            "evaluate",
            predictions,
            "--labels",
            labels,
            "--frames",
            HELD_OUT,
            "--video-path",
            video,
            "--json",
            report,
        ),
        check=True,
        capture_output=True,
    )
    return float(json.loads(report.read_text())["mAP"])


def demo_int8_maps(out: Path) -> tuple[float, float]:
    """OKS mAP of the demo network (a trained bottom-up UNet) in fp32 and int8 on a held-out synthetic video
    (seed 12, 300 frames, 2 animals) against its ground truth; int8 quantized by the engine's exporter,
    calibrated on another synthetic video (seed 13)."""
    import json
    from dataclasses import replace

    from posestream.engine.model.model_dir import load_model_dir
    from posestream.export.calibration import inputs_from_video
    from posestream.export.onnx import quantize_int8

    held, calibration, int8 = out / "held_out.mp4", out / "calibration.mp4", out / "demo_int8"
    for video, seed, frames in ((held, 12, 300), (calibration, 13, 64)):
        if not video.exists():
            subprocess.run(
                posestream_command(
                    "synth",
                    video,
                    "--num-frames",
                    frames,
                    "--size",
                    "384x384",
                    "--seed",
                    seed,
                    "--no-slp",
                    "--quiet",
                ),
                check=True,
            )
    if not (int8 / "metadata.json").exists():
        demo = load_model_dir("demo")
        int8.mkdir(exist_ok=True)
        metadata = replace(demo.metadata, precision="int8")
        quantize_int8(
            demo.file("onnx"),
            int8 / "model.onnx",
            inputs_from_video(calibration, 64, demo.metadata),
            metadata,
        )
        (int8 / "metadata.json").write_text(metadata.to_json())
    maps = []
    for name, model in (("fp32", "demo"), ("int8", int8)):
        predictions, report = out / f"demo_{name}.h5", out / f"demo_{name}.json"
        subprocess.run(
            posestream_command("track", "-i", held, "-m", model, "-o", predictions, "--quiet"),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            posestream_command(
                "evaluate", predictions, "--labels", held.with_suffix(".analysis.h5"), "--json", report
            ),
            check=True,
            capture_output=True,
        )
        maps.append(float(json.loads(report.read_text())["mAP"]))
    return maps[0], maps[1]


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sleap-nn-python", required=True, help="python of a venv with sleap-nn[export]==0.3.5"
    )
    parser.add_argument("--out", type=Path, default=HERE / "data" / "sleap_nn")
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    checkpoints = (
        Path(os.environ.get("POSESTREAM_SLEAP_NN_DATA", HERE.parents[1] / "shared" / "data" / "sleap-nn"))
        / "model_ckpts"
    )
    video, labels = data / "centered_pair_small.mp4", data / "centered_pair_predictions.slp"
    runs = {run for _, (_, names) in SETUPS.items() for run in names} | {
        r for names in ACCURACY.values() for r in names
    }
    for path in (video, labels, checkpoints, *(HERE / "data" / "same_size" / run for run in runs)):
        if not path.exists():
            sys.exit(
                f"{path} not found: set POSESTREAM_SLEAP_DATA / POSESTREAM_SLEAP_NN_DATA, and run "
                "benchmarks/same_size.py first"
            )
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "runner.py").write_text(RUNNER)
    loss = {}
    demo_fp32, demo_int8 = demo_int8_maps(out)
    print(
        f"demo (trained bottom-up): held-out synthetic OKS mAP fp32 {demo_fp32:.4f}, int8 {demo_int8:.4f}",
        flush=True,
    )
    for name, runs_ in ACCURACY.items():
        for run in runs_:
            trained_long_enough(run)
        maps = {
            p: held_out_map(video, labels, [ours(r, p) for r in runs_], out / f"accuracy_{name}_{p}")
            for p in ("fp32", "int8")
        }
        loss[name] = (maps["fp32"], maps["int8"])
        print(f"{name}: held-out OKS mAP fp32 {maps['fp32']:.3f}, int8 {maps['int8']:.3f}", flush=True)
    lines = [
        "| model | engine | wall s (start-up included) | frames / wall s | peak RSS (MB) | against "
        "sleap-nn |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, (ckpt_names, our_runs) in SETUPS.items():
        onnx_dir = theirs(
            args.sleap_nn_python, out, name.replace("-", ""), [checkpoints / c for c in ckpt_names]
        )
        commands = {
            "sleap-nn 0.3.5 `predict --runtime onnx` (onnxruntime fp32)": sleap_nn(
                args.sleap_nn_python,
                out,
                "predict",
                "-i",
                video,
                "-m",
                onnx_dir,
                "--runtime",
                "onnx",
                "-d",
                "cpu",
                "-o",
                out / f"{name}_theirs.slp",
            )
        }
        for precision in ("fp32", "int8"):
            models = [a for r in our_runs for a in ("-m", ours(r, precision))]
            commands[f"posestream `track`, onnxruntime {precision}"] = posestream_command(
                "track", "-i", video, *models, "-o", out / f"{name}_ours_{precision}.h5", "--quiet"
            )
        timings: dict[str, list] = {label: [] for label in commands}
        for _ in range(REPEATS):  # alternated: every command meets the same machine states
            for label, command in commands.items():
                timings[label].append(peak_rss_and_seconds(command))
        reference = float(np.median([t for _, t in timings[next(iter(commands))]]))
        for label, runs_ in timings.items():
            seconds, rss = float(np.median([t for _, t in runs_])), max(r for r, _ in runs_)
            verdict = ""
            if label.startswith("posestream"):
                precision = label.split()[-1]
                fp32_map, int8_map = loss[name]
                lost = max(fp32_map - int8_map, demo_fp32 - demo_int8) if precision == "int8" else 0.0
                ok = reference / seconds >= 1.5 and lost <= 0.02
                verdict = (
                    f"{reference / seconds:.2f}x"
                    + (
                        f"; int8 held-out mAP: same-shape fly network {int8_map:.3f} vs "
                        f"fp32 {fp32_map:.3f}, trained demo network {demo_int8:.3f} vs {demo_fp32:.3f}"
                        if precision == "int8"
                        else ""
                    )
                    + f" (bar 1.5x, <= 0.02 mAP lost: {'met' if ok else 'NOT met'})"
                )
            lines.append(
                f"| {name} | {label} | {seconds:.1f} | {FRAMES / seconds:.1f} | {rss:.0f} | {verdict} |"
            )
            print(lines[-1], flush=True)
    write_section(
        "sleap-nn-same-machine",
        [
            "## sleap-nn and posestream on the same machine",
            "",
            "`python benchmarks/sleap_nn_same_machine.py --sleap-nn-python VENV/bin/python` "
            f"({platform.machine()}, {os.cpu_count()} cores). Each engine's own networks of sleap-nn's "
            "test-model shape (its test checkpoints; ours from benchmarks/same_size.py) over the 1100 "
            "frames of centered_pair_small.mp4, by the command a user types, each in its own process, "
            f"{REPEATS} runs alternated (median seconds, largest peak RSS). int8 accuracy: our fly networks "
            f"of the same shapes on the held-out frames {HELD_OUT} against SLEAP's predictions (the "
            f"bottom-up one trained {ACCURACY_MINUTES['bottomup']:g} minutes in all), and the demo network "
            "(trained bottom-up) on a held-out synthetic video against its ground truth, each fp32 against "
            "int8.",
            "",
            *lines,
        ],
    )


if __name__ == "__main__":
    main()
