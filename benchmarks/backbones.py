"""ConvNeXt and Swin-T backbones against the UNet: sleap-nn checkpoints imported, speed, accuracy.

    python benchmarks/backbones.py [--parts parity,speed,accuracy] [--sleap-nn-python VENV/bin/python]
        [--minutes 30] [--out DIR]

- parity (issue 26, bar 3): sleap-nn 0.3.5 (its own venv, ``--sleap-nn-python``) builds a model of each
  backbone from the single-instance fixture's training_config.yaml (../shared/data/sleap-nn/model_ckpts,
  its UNet replaced by ``convnext`` or ``swint``, tiny), with its own initialisation and then every
  parameter moved by a random amount (so that no tensor is left at a value that hides a wrong mapping),
  and saves it as a model folder (training_config.yaml, best.ckpt) with its outputs on a random input.
  ``posestream import`` reads the folder (no sleap-nn) and our network's outputs on the same input are
  compared: max |difference|, bar 1e-4.
- speed: a single-instance model of each backbone on 384x384 frames (``synth``), exported to ONNX, run by
  ``posestream bench`` on 40 frames in 2 rounds: model-only ms per frame and end-to-end FPS. Run alone on
  the machine.
- accuracy (bar 3): the top-down pair on the fly labels (train 0-879, score 880-1099), each network
  --minutes, with each backbone of ``--kinds`` (default: the UNet's row too) for the centered-instance
  network; the centroid network is one UNet, shared by every row (``--centroid RUN``: a run trained
  already, e.g. the learning curve's). ConvNeXt and Swin train at learning rate 1e-4, sleap-nn's for them
  (its sample configs), not the UNet profile's 1e-3. Each centered-instance network is scored twice: with
  the centroid network, and alone on the labels' anchors, which leaves the centroid out of the comparison.

Writes the "backbones" section of benchmarks/RESULTS.md from every part measured so far in OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
from accuracy import FLIES, evaluate, train
from results import (
    SLEAP_NN_SHIM,
    add_centroid_option,
    bench_json,
    checked_centroid,
    refuse_unknown,
    run_posestream,
    sleap_files,
    write_section,
)

HERE = Path(__file__).resolve().parent
FIXTURES = Path(os.environ.get("POSESTREAM_SLEAP_NN_DATA", HERE.parents[1] / "shared" / "data" / "sleap-nn"))
KINDS = ("convnext", "swint")
BAR = 1e-4
PYRAMID_RATE = "optim.learning_rate=1e-4"  # sleap-nn's sample configs' for ConvNeXt and Swin

# Run in sleap-nn's venv: argv = fixture folder, output folder.
MAKE = """
import os, sys, yaml, numpy as np, torch
from omegaconf import OmegaConf
from sleap_nn.config.model_config import BackboneConfig, ConvNextConfig, SwinTConfig
from sleap_nn.training.lightning_modules import SingleInstanceLightningModule

source, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
for kind, make in (("convnext", ConvNextConfig), ("swint", SwinTConfig)):
    config = yaml.safe_load(open(f"{source}/training_config.yaml"))
    model = config["model_config"]
    unet = model["backbone_config"]["unet"]
    chosen = make(model_type="tiny", in_channels=unet["in_channels"], output_stride=unet["output_stride"])
    backbone = OmegaConf.structured(BackboneConfig(**{kind: chosen}))
    model["backbone_config"] = OmegaConf.to_container(backbone)
    module = SingleInstanceLightningModule(
        model_type="single_instance", backbone_type=kind, backbone_config=backbone,
        head_configs=OmegaConf.create(model["head_configs"]), init_weights="xavier",
    ).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    x = torch.rand(2, unet["in_channels"], 160, 288, generator=generator)
    with torch.no_grad():
        y = next(iter(module.model(x).values()))
    folder = f"{out}/sleap_nn_{kind}"
    os.makedirs(folder, exist_ok=True)
    yaml.safe_dump(config, open(f"{folder}/training_config.yaml", "w"), sort_keys=False)
    torch.save({"state_dict": module.state_dict()}, f"{folder}/best.ckpt")
    np.save(f"{folder}/input.npy", x.numpy())
    np.save(f"{folder}/output.npy", y.numpy())
    print(kind, tuple(y.shape), sum(p.numel() for p in module.parameters()), "parameters")
"""


def parity(out: Path, sleap_nn_python: str) -> None:
    """sleap-nn's model folders (made once), imported: max |difference| of the outputs, to OUT/parity.json."""
    fixture = FIXTURES / "model_ckpts" / "minimal_instance_single_instance"
    if not all((out / f"sleap_nn_{kind}" / "best.ckpt").exists() for kind in KINDS):
        script = out / "make_sleap_nn_models.py"
        script.write_text(SLEAP_NN_SHIM + MAKE)
        subprocess.run([sleap_nn_python, str(script), str(fixture), str(out)], check=True)
    import torch

    from posestream.export.importers.importer import read_model

    results = {}
    for kind in KINDS:
        folder = out / f"sleap_nn_{kind}"
        model = read_model(folder)
        with torch.no_grad():
            ours = next(iter(model.network(torch.from_numpy(np.load(folder / "input.npy"))).values())).numpy()
        theirs = np.load(folder / "output.npy")
        run_posestream(
            "import", folder, "-o", out / f"imported_{kind}"
        )  # the whole import: ONNX and metadata
        results[kind] = {
            "max_abs_difference": float(np.abs(ours - theirs).max()),
            "max_abs_output": float(np.abs(theirs).max()),
        }
        print(kind, results[kind], flush=True)
    (out / "parity.json").write_text(json.dumps(results, indent=2))


def speed(out: Path) -> None:
    """Model-only ms per frame and end-to-end FPS of a single-instance model of each backbone, 384x384."""
    video = out / "synth384.mp4"
    if not video.exists():
        run_posestream("synth", video, "--num-frames", 300, "--size", "384x384", "--quiet")
    figures = {}
    for kind in ("unet", *KINDS):
        run = out / f"speed_{kind}"
        if not (run / "model" / "metadata.json").exists():
            sets = [
                f"backbone.type={kind}",
                "data.input_scale=1.0",
                "optim.max_epochs=1",
                "optim.steps_per_epoch=1",
            ]
            sets += ["backbone.max_stride=16"] if kind == "unet" else []
            run_posestream(
                "train",
                video.with_suffix(".slp"),
                "-o",
                run,
                "--profile",
                "single_instance",
                "--quiet",
                *[a for s in sets for a in ("--set", s)],
            )
            run_posestream("export", run, "-o", run / "model", "--input-size", "384x384")
        # 40 frames in 2 rounds: a transformer backbone at 384x384 takes a second a frame on 2 cores
        result = bench_json(
            video, [run / "model"], 4, out / f"speed_{kind}.json", "--frames", "0-39", "--rounds", 2
        )
        figures[kind] = {"model_ms": 1000 / result["model_fps"], "end_to_end_fps": result["end_to_end_fps"]}
    (out / "speed.json").write_text(json.dumps(figures, indent=2))


def accuracy(out: Path, minutes: float, kinds: list[str], centroid: Path | None) -> None:
    """The top-down pair with each backbone's centered-instance network, scored on the held-out frames."""
    labels, video = sleap_files(*FLIES)
    thorax = "head.anchor_part=thorax"
    if centroid is None:
        centroid = out / "centroid"
        train(labels, centroid, "centroid", "0-879", video, minutes, thorax)
    for kind in kinds:
        run = out / f"centered_{kind}"
        sets = [thorax, f"backbone.type={kind}", *([] if kind == "unet" else [PYRAMID_RATE])]
        train(labels, run, "centered_instance", "0-879", video, minutes, *sets)
        for runs, name in (([centroid, run], f"accuracy_{kind}.json"), ([run], f"anchors_{kind}.json")):
            if not (out / name).exists():
                evaluate(runs, labels, "880-1099", video, out / name)
        figures = {"centroid": str(centroid), **training_figures(run)}
        (out / f"training_{kind}.json").write_text(json.dumps(figures, indent=2))


def training_figures(run: Path) -> dict:
    """What a run's summary says of its training: epochs, examples/s, minutes."""
    summary = json.loads((run / "summary.json").read_text())
    return {
        "epochs": summary["epochs"],
        "examples_per_second": summary["samples_per_second"],
        "minutes": sum(summary["seconds"].values()) / 60,
    }


def table(out: Path, minutes: float) -> list[str]:
    lines = ["## Backbones: ConvNeXt and Swin-T (issue 26, bar 3)", ""]
    lines += [f"`python benchmarks/backbones.py` ({platform.machine()}, {os.cpu_count()} cores)", ""]
    if (out / "parity.json").exists():
        parity_figures = json.loads((out / "parity.json").read_text())
        lines += [
            "sleap-nn 0.3.5 checkpoints (tiny, from the single-instance fixture's config, every parameter "
            "moved at random), imported by `posestream import`, outputs against sleap-nn's on one input:",
            "",
            "| backbone | max abs difference | largest output | bar |",
            "|---|---:|---:|---|",
        ]
        for kind, f in parity_figures.items():
            ok = "met" if f["max_abs_difference"] <= BAR else "**not met**"
            lines.append(
                f"| {kind} | {f['max_abs_difference']:.2e} | {f['max_abs_output']:.2f} | <= {BAR:g}: {ok} |"
            )
        lines.append("")
    if (out / "speed.json").exists():
        lines += [
            "Single-instance model, 384x384 frames, ONNX Runtime fp32, batch 4 (`posestream bench`):",
            "",
        ]
        lines += ["| backbone | model-only ms per frame | end-to-end FPS |", "|---|---:|---:|"]
        for kind, f in json.loads((out / "speed.json").read_text()).items():
            lines.append(f"| {kind} | {f['model_ms']:.1f} | {f['end_to_end_fps']:.1f} |")
        lines.append("")
    scored = [k for k in ("unet", *KINDS) if (out / f"accuracy_{k}.json").exists()]
    if scored:
        centroids = {json.loads(f.read_text()).get("centroid") for f in out.glob("training_*.json")} - {
            None,
            str(out / "centroid"),
        }
        shared = f" (the centroid network: {', '.join(sorted(centroids))})" if centroids else ""
        lines += [
            f"Top-down on the flies, {minutes:g} minutes per centered-instance network{shared}, held-out "
            "frames 880-1099:",
            "",
        ]
        lines += [
            "| centered-instance backbone | OKS mAP, top-down | OKS mAP, on the labels' anchors "
            "| epochs | examples/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for k in scored:
            top_down = json.loads((out / f"accuracy_{k}.json").read_text())["mAP"]
            anchors = out / f"anchors_{k}.json"
            alone = f"{json.loads(anchors.read_text())['mAP']:.3f}" if anchors.exists() else "-"
            trained = out / f"training_{k}.json"
            f = json.loads(trained.read_text()) if trained.exists() else {}
            lines.append(
                f"| {k} | {top_down:.3f} | {alone} | {f.get('epochs', '-')} "
                f"| {f.get('examples_per_second', float('nan')):.1f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="parity,speed,accuracy")
    parser.add_argument("--sleap-nn-python", help="python of a venv with sleap-nn[export]==0.3.5")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "backbones")
    parser.add_argument("--kinds", default="unet,convnext,swint", help="centered-instance backbones to train")
    add_centroid_option(parser)
    args = parser.parse_args()
    args.centroid = checked_centroid(parser, args.centroid)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    if "parity" in parts:
        if not args.sleap_nn_python:
            parser.error("the parity part needs --sleap-nn-python (a venv with sleap-nn[export]==0.3.5)")
        parity(args.out, args.sleap_nn_python)
    if "speed" in parts:
        speed(args.out)
    if "accuracy" in parts:
        kinds = args.kinds.split(",")
        refuse_unknown(parser, "--kinds", kinds, ["unet", *KINDS])
        accuracy(args.out, args.minutes, kinds, args.centroid)
    write_section("backbones", table(args.out, args.minutes))


if __name__ == "__main__":
    main()
