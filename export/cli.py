"""``posestream export``. Only argparse is imported here; torch and onnx when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from posestream.engine.extras import require

OUTPUT_MODE_HELP = (
    "maps: confidence maps (and PAFs) leave the graph, for CPU hosts; peaks: the graph finds the top-K "
    "peak candidates (and PAF samples between them), so a GPU host returns kilobytes per frame"
)


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a trained run to a model directory the engine runs (ONNX, TensorRT, torch.export)",
        description="Write MODEL_DIR/metadata.json and the model in each format. The graph takes uint8 "
        "frames (N, H, W, C) of the export size, with casting, scaling and padding inside. Top-down: "
        "export the centroid and the centered-instance runs into two directories.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="training run (posestream train -o RUN_DIR)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    parser.add_argument("--format", default="onnx", metavar="onnx|tensorrt|torch|all",
                        help="model files to write, comma-separated (default onnx; tensorrt also writes the "
                        "onnx it is built from)")  # fmt: skip
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"],
                        help="default fp32, or fp16 when the formats include tensorrt; int8: post-training "
                        "quantization calibrated on the run's training frames")  # fmt: skip
    parser.add_argument("--output-mode", default="maps", choices=["maps", "peaks"], help=OUTPUT_MODE_HELP)
    parser.add_argument("--max-batch", type=int, default=16, help="largest batch for TensorRT / torch (default 16)")
    parser.add_argument("--input-size", metavar="HxW",
                        help="frame size the model takes (default: the run's frames; crop side for centered-instance)")  # fmt: skip
    parser.add_argument("--max-peaks", type=int, metavar="K", help="peak candidates per node (default by model type)")
    parser.add_argument("--calibration-frames", type=int, default=64, help="int8 calibration frames (default 64)")
    parser.add_argument("--checkpoint", default="best.pt", choices=["best.pt", "last.pt"])
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    for module in ("torch", "onnx"):
        require(module, extra="train", feature="posestream export")
    from .exporter import FORMATS, ExportOptions, export_run, parse_size

    options = ExportOptions(
        formats=FORMATS if args.format == "all" else tuple(args.format.split(",")), precision=args.precision,
        output_mode=args.output_mode, max_batch=args.max_batch,
        input_size=parse_size(args.input_size) if args.input_size else None, max_peaks=args.max_peaks,
        calibration_frames=args.calibration_frames, checkpoint=args.checkpoint,
    )  # fmt: skip
    model = export_run(args.run_dir, args.output, options, progress=not args.quiet)
    meta = model.metadata
    files = ", ".join(p.name for p in sorted(model.path.iterdir()))
    print(f"{model.path}: {meta.model_type.value} model, input {meta.input_shape} uint8 (NHWC), "
          f"{meta.precision}, {meta.output_mode.value} mode (K={meta.max_peaks}); files: {files}")  # fmt: skip
    return 0


def add_import_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import",
        help="bring a model trained by SLEAP 1.x or sleap-nn into a model directory the engine runs",
        description="Read a SLEAP 1.x model folder (training_config.json + best_model.h5, no TensorFlow needed) or a "
        "sleap-nn one (training_config.yaml + best.ckpt) and write MODEL_DIR as `posestream export` does: the "
        "same network in the same graph (uint8 frames in), metadata.json. Top-down: import the centroid and the "
        "centered-instance folders into two directories.",
    )
    parser.add_argument("model_dir", metavar="SLEAP_MODEL_DIR")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    parser.add_argument("--format", default="onnx", metavar="onnx|torch|tensorrt",
                        help="model files, comma-separated (default onnx; tensorrt needs posestream[gpu] and a GPU)")  # fmt: skip
    parser.add_argument("--output-mode", default="maps", choices=["maps", "peaks"], help=OUTPUT_MODE_HELP)
    parser.add_argument("--input-size", metavar="HxW",
                        help="frame size the model takes (default: the size it was trained on; crop side for centered-instance)")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=16, help="largest batch of a TensorRT engine or torch program (default 16)")
    parser.add_argument("--max-instances", type=int, default=10, help="most animals per frame (default 10)")
    parser.add_argument("--max-peaks", type=int, metavar="K", help="peak candidates per node (default by model type)")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"],
                        help="default fp32, or fp16 with tensorrt; int8: post-training quantization of the ONNX model, "
                        "calibrated on --calibration")  # fmt: skip
    parser.add_argument("--calibration", metavar="VIDEO|LABELS.slp",
                        help="int8: frames to calibrate on (a video of the model's frame size, or labels: crops "
                        "around the animals for centered-instance); default: the folder's own training labels")  # fmt: skip
    parser.add_argument("--calibration-frames", type=int, default=64, help="int8 calibration frames (default 64)")
    parser.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="posestream import")
    from .exporter import parse_size
    from .importers.importer import ImportOptions, import_model

    options = ImportOptions(formats=tuple(args.format.split(",")), output_mode=args.output_mode,
                            input_size=parse_size(args.input_size) if args.input_size else None,
                            max_instances=args.max_instances, max_peaks=args.max_peaks, precision=args.precision,
                            calibration=args.calibration, calibration_frames=args.calibration_frames,
                            max_batch=args.max_batch)  # fmt: skip
    model = import_model(args.model_dir, args.output, options)
    meta = model.metadata
    files = ", ".join(p.name for p in sorted(model.path.iterdir()))
    print(f"{model.path}: {meta.model_type.value} model from {args.model_dir}, input {meta.input_shape} uint8 (NHWC), "
          f"nodes {list(meta.skeleton.nodes)}; files: {files}")  # fmt: skip
    if (Path(args.model_dir) / "best_model.h5").exists():
        print("checked: every layer's weights against its config (counts and sizes) and for damaged values (NaN, "
              "infinite, beyond 1e6); not checked: damage that leaves plausible values (a Keras file has no "
              "checksum), and the optimizer state, which inference does not read")  # fmt: skip
    return 0
