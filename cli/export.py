"""``export`` and ``import``: model directories the engine runs, from our training runs or SLEAP's and
sleap-nn's.

torch and onnx are imported when a command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from posestream.cli import options as opt
from posestream.engine.extras import require


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_export_parser(sub)
    _add_import_parser(sub)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a trained run to a model directory the engine runs (ONNX, TensorRT, torch.export)",
        description="Write MODEL_DIR/metadata.json and the model in each format. The graph takes uint8 "
        "frames (N, H, W, C) of the export size, with casting, scaling and padding inside. Top-down: "
        "export the centroid and the centered-instance runs into two directories. --format: onnx (default), "
        "tensorrt (also writes the onnx it is built from), torch, or all.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="training run (posestream train -o RUN_DIR)")
    opt.OUTPUT.add(parser, required=True, metavar="MODEL_DIR")
    opt.FORMAT.add(parser, metavar="onnx|tensorrt|torch|all")
    opt.PRECISION.add(parser)
    opt.OUTPUT_MODE.add(parser)
    opt.MAX_BATCH.add(parser, default=16)
    opt.INPUT_SIZE.add(parser)
    opt.MAX_PEAKS.add(parser)
    opt.CALIBRATION_FRAMES.add(parser)
    parser.add_argument("--checkpoint", default="best.pt", choices=["best.pt", "last.pt"])
    opt.QUIET.add(parser)
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    for module in ("torch", "onnx"):
        require(module, extra="train", feature="posestream export")
    from posestream.export.exporter import FORMATS, ExportOptions, export_run, parse_size

    options = ExportOptions(
        formats=FORMATS if opt.formats(args) == ("all",) else opt.formats(args) or ("onnx",),
        precision=args.precision,
        output_mode=args.output_mode,
        max_batch=args.max_batch,
        input_size=parse_size(args.input_size) if args.input_size else None,
        max_peaks=args.max_peaks,
        calibration_frames=args.calibration_frames,
        checkpoint=args.checkpoint,
    )
    model = export_run(args.run_dir, args.output, options, progress=not args.quiet)
    meta = model.metadata
    files = ", ".join(p.name for p in sorted(model.path.iterdir()))
    print(
        f"{model.path}: {meta.model_type.value} model, input {meta.input_shape} uint8 (NHWC), "
        f"{meta.precision}, {meta.output_mode.value} mode (K={meta.max_peaks}); files: {files}"
    )
    return 0


def _add_import_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import",
        help="bring a model trained by SLEAP 1.x or sleap-nn into a model directory the engine runs",
        description="Read a SLEAP 1.x model folder (training_config.json + best_model.h5, no TensorFlow "
        "needed) or a sleap-nn one (training_config.yaml + best.ckpt) and write MODEL_DIR as `posestream "
        "export` does: the same network in the same graph (uint8 frames in), metadata.json. Top-down: import "
        "the centroid and the centered-instance folders into two directories. --format: onnx (default), "
        "torch, tensorrt (needs posestream[gpu] and a GPU).",
    )
    parser.add_argument("model_dir", metavar="SLEAP_MODEL_DIR")
    opt.OUTPUT.add(parser, required=True, metavar="MODEL_DIR")
    opt.FORMAT.add(parser, metavar="onnx|torch|tensorrt")
    opt.OUTPUT_MODE.add(parser)
    opt.INPUT_SIZE.add(parser)
    opt.MAX_BATCH.add(parser, default=16)
    opt.MAX_INSTANCES.add(parser, default=10)
    opt.MAX_PEAKS.add(parser)
    opt.PRECISION.add(parser)
    parser.add_argument(
        "--calibration-data",
        metavar="VIDEO|LABELS.slp",
        help="int8: frames to calibrate on (a video of the model's frame size, or labels: crops "
        "around the animals for centered-instance); default: the folder's own training labels",
    )
    opt.CALIBRATION_FRAMES.add(parser)
    parser.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="posestream import")
    from posestream.export.exporter import parse_size
    from posestream.export.importers.importer import ImportOptions, import_model

    options = ImportOptions(
        formats=opt.formats(args) or ("onnx",),
        output_mode=args.output_mode,
        input_size=parse_size(args.input_size) if args.input_size else None,
        max_instances=args.max_instances,
        max_peaks=args.max_peaks,
        precision=args.precision,
        calibration=args.calibration_data,
        calibration_frames=args.calibration_frames,
        max_batch=args.max_batch,
    )
    model = import_model(args.model_dir, args.output, options)
    meta = model.metadata
    files = ", ".join(p.name for p in sorted(model.path.iterdir()))
    print(
        f"{model.path}: {meta.model_type.value} model from {args.model_dir}, input {meta.input_shape} uint8 "
        f"(NHWC), nodes {list(meta.skeleton.nodes)}; files: {files}"
    )
    if (Path(args.model_dir) / "best_model.h5").exists():
        print(
            "checked: every layer's weights against its config (counts and sizes) and for damaged values "
            "(NaN, infinite, beyond 1e6); not checked: damage that leaves plausible values (a Keras file has "
            "no checksum), and the optimizer state, which inference does not read"
        )
    return 0
