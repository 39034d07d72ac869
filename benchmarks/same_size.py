"""The engine against sleap-nn's reference figures with networks of the same size, on the fly video.

    python benchmarks/same_size.py [--minutes 10] [--batch 8] [--out benchmarks/data/same_size]

sleap-nn 0.3.5's small test models (the issue's reference; measured on this kind of machine):
UNet filters 16, filters rate 1.5, max stride 8, output stride 2. Its bottom-up test model
(tests/assets/model_ckpts/minimal_instance_bottomup in sleap-nn's repository) is trained on
minimal_instance.pkg.slp: a 2-node skeleton with one edge, PAFs at stride 4. This script trains
networks of that shape (--minutes each): bottom-up on centered_pair_small.mp4 frames 0-879 with
the fly's 24 nodes and on minimal_instance.pkg.slp with sleap-nn's 2 nodes (both at full
resolution), and top-down as centroid (input scale 0.5) + centered-instance (crops), exports
each at fp32 and int8 (onnxruntime, maps mode), then over the whole video (1100 frames) runs
``posestream bench`` (end-to-end FPS and stage figures) and ``posestream track`` in its own process
(peak RSS of the command a user runs). Writes the "same-size" section of benchmarks/RESULTS.md.
Conv GFLOPs per frame are counted with forward hooks on the trained network.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from results import bench_json, peak_rss_and_seconds, posestream_command, run_posestream, write_section

HERE = Path(__file__).resolve().parent
SLEAP_NN_SHAPE = [
    "backbone.filters=16",
    "backbone.filters_rate=1.5",
    "backbone.max_stride=8",
    "head.output_stride=2",
]
RUNS = {  # run name -> (profile, extra settings, labels: the fly video's or sleap-nn's 2-node test labels)
    "bottomup": ("bottomup", [], "flies"),
    "bottomup_2node": (
        "bottomup",
        [
            "head.sigma=1.5",
            "head.paf_output_stride=4",
            "data.val_fraction=0",
            "optim.max_epochs=100000",
            "optim.early_stopping_patience=100000",
            "optim.plateau_patience=100000",
        ],
        "minimal",
    ),  # one labelled frame: an epoch is a step
    "centroid": ("centroid", ["head.anchor_part=thorax"], "flies"),
    "centered_instance": ("centered_instance", ["head.anchor_part=thorax"], "flies"),
}
PIPELINES = {
    "bottom-up": ["bottomup"],
    "bottom-up, 2 nodes": ["bottomup_2node"],
    "top-down": ["centroid", "centered_instance"],
}
# FPS: torch batch 4, ONNX export; peak RSS range for both (the figures, 2-node bottom-up)
SLEAP_NN = {
    "bottom-up, 2 nodes": (16.8, 41.5),
    "top-down": (14.1, 21.3),
}
SLEAP_NN_RSS = "830-970"


def train(name: str, data: Path, out: Path, minutes: float) -> Path:
    run = out / name
    if not (run / "best.pt").exists():
        profile, extra, labels = RUNS[name]
        sets = [a for s in SLEAP_NN_SHAPE + extra for a in ("--set", s)]
        if labels == "flies":
            source = [
                data / "centered_pair_predictions.slp",
                "--frames",
                "0-879",
                "--video-path",
                data / "centered_pair_small.mp4",
            ]
        else:
            source = [data / "minimal_instance.pkg.slp"]
        run_posestream(
            "train", *source, "-o", run, "--profile", profile, "--max-minutes", minutes, "--quiet", *sets
        )
    return run


def export(run: Path, out: Path, precision: str) -> Path:
    if not (out / "metadata.json").exists():
        size = [] if run.name == "centered_instance" else ["--input-size", "384x384"]
        run_posestream("export", run, "-o", out, "--precision", precision, "--quiet", *size)
    return out


def gflops(run: Path) -> float:
    """Convolution GFLOPs of one forward pass of the run's network on one input (frame or crop)."""
    import torch

    from posestream.train.predict import RunModel

    model = RunModel(run)
    total = 0.0

    def count(module, _inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += (
            2
            * module.in_channels
            * module.out_channels
            * kh
            * kw
            * output.shape[-2]
            * output.shape[-1]
            / module.groups
        )

    network = model.network
    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    height, width = model.network_shape
    channels = network.backbone.down[0][0].in_channels
    with torch.no_grad():
        network(torch.zeros(1, channels, height, width))
    for hook in hooks:
        hook.remove()
    return total / 1e9


def track_rss(video: Path, models: list[Path], out: Path, batch: int) -> float:
    """Peak RSS (MB) of a ``posestream track`` process over the whole video."""
    command = posestream_command(
        "track",
        "-i",
        video,
        *[a for m in models for a in ("-m", m)],
        "-o",
        out,
        "--batch-size",
        batch,
        "--quiet",
    )
    return peak_rss_and_seconds(command)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="training minutes per network (default 10)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "same_size")
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    video = data / "centered_pair_small.mp4"
    for name in ("centered_pair_predictions.slp", "centered_pair_small.mp4", "minimal_instance.pkg.slp"):
        if not (data / name).exists():
            sys.exit(f"{data / name} not found: set POSESTREAM_SLEAP_DATA to the folder with the SLEAP data")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs = {name: train(name, data, out, args.minutes) for name in RUNS}
    flops = {name: gflops(run) for name, run in runs.items()}
    rows = []
    for pipeline, names in PIPELINES.items():
        for precision in ("fp32", "int8"):
            models = [export(runs[n], out / f"{n}_{precision}", precision) for n in names]
            stem = pipeline.replace(", ", "_").replace(" ", "_")
            result = bench_json(video, models, args.batch, out / f"{stem}_{precision}.json")
            rss = track_rss(video, models, out / f"{stem}_{precision}.h5", args.batch)
            rows.append((pipeline, precision, result, rss))
            print(f"{pipeline} {precision}: {result['end_to_end_fps']:.1f} FPS, track peak RSS {rss:.0f} MB")
    write_table(rows, flops, args)


def write_table(rows, flops: dict[str, float], args) -> None:
    """Raw FPS, and FPS relative to onnxruntime running the same fp32 network alone in the same process:
    the machine-independent figure (sleap-nn's ONNX path: 41.5 FPS over onnxruntime's ~42 alone)."""
    lines = [
        "| pipeline | engine | model-only FPS | end-to-end FPS | end-to-end / fp32 model-only | peak RSS "
        "(MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for pipeline in PIPELINES:
        if pipeline in SLEAP_NN:
            torch_fps, onnx_fps = SLEAP_NN[pipeline]
            alone = "~42" if pipeline.startswith("bottom-up") else "n/a"
            ratio = f"{onnx_fps / 42:.2f}" if pipeline.startswith("bottom-up") else "n/a"
            lines.append(
                f"| {pipeline} | sleap-nn 0.3.5, torch (batch 4) | | {torch_fps:.1f} | | {SLEAP_NN_RSS} |"
            )
            lines.append(
                f"| {pipeline} | sleap-nn 0.3.5, ONNX | {alone} | {onnx_fps:.1f} | {ratio} | {SLEAP_NN_RSS} |"
            )
        fp32 = next(
            r["model_fps"] for name, precision, r, _ in rows if name == pipeline and precision == "fp32"
        )
        for name, precision, r, rss in rows:
            if name == pipeline:
                lines.append(
                    f"| {pipeline} | posestream, onnxruntime {precision} (batch {r['batch_size']}) | "
                    f"{r['model_fps']:.1f} | {r['end_to_end_fps']:.1f} | "
                    f"{r['end_to_end_fps'] / fp32:.2f} | {rss:.0f} |"
                )
    sizes = ", ".join(f"{name} {g:.2f}" for name, g in flops.items())
    machine = f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime CPU"
    write_section(
        "same-size",
        [
            "## Same-size networks: posestream against sleap-nn",
            "",
            f"`python benchmarks/same_size.py --minutes {args.minutes:g}` ({machine}). Our networks have "
            "sleap-nn's test-model shape (UNet filters 16, rate 1.5, max stride 8, output stride 2), "
            f"trained here for {args.minutes:g} minutes each, on the fly video, or for the 2-node bottom-up "
            "on sleap-nn's own test labels (its bottom-up test model's skeleton); conv GFLOPs per input: "
            f"{sizes} (sleap-nn's bottom-up: 3.9 per 384x384 frame). All 1100 frames of "
            "centered_pair_small.mp4. sleap-nn's rows are the issue's figures from another machine of this "
            "kind; the ratio column (end-to-end over onnxruntime running the fp32 network alone, measured "
            "in the same run) is the comparison that does not depend on the machine. Peak RSS: ours is the "
            "`posestream track` process (no torch loaded); sleap-nn's, its inference process.",
            "",
            *lines,
        ],
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
