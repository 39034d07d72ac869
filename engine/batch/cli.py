"""``posestream batch``: the command over ``runner.run_batch``."""

from __future__ import annotations

import argparse


def _batch(args: argparse.Namespace) -> int:
    from ..cli import tracker_config
    from ..track import TrackOptions
    from .progress import format_summary
    from .runner import BatchOptions, run_batch

    track = TrackOptions(
        batch_size=args.batch_size, backend=args.backend, device=args.device, peak_threshold=args.peak_threshold,
        max_instances=args.max_instances, formats=tuple(f for spec in args.format for f in spec.split(",")) or ("analysis-h5",),
        workers=1, progress=False, tracking=tracker_config(args), max_missing=args.max_missing,
    )  # fmt: skip
    options = BatchOptions(track, args.engine, args.workers, args.address, args.gpus_per_worker, args.shard,
                           args.split_frames, progress=not args.quiet)  # fmt: skip
    summary = run_batch(args.inputs, args.model, args.output, options)
    print(format_summary(summary))
    return summary.exit_code


def add_batch_parser(sub) -> None:
    from ..cli import add_tracking_arguments

    batch = sub.add_parser(
        "batch",
        help="run whole archives: many videos on many workers, resumable",
        description="Predict poses on every video of INPUTS (video files, folders searched recursively, text "
        "files listing videos) into OUT_DIR/<path under the inputs' common folder>.predictions.h5, with a "
        "manifest (OUT_DIR/manifest.jsonl). Run the same command again to finish: done videos are checked "
        "and skipped; changed videos or models are redone. A failed video fails only itself.",
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, folder, or text file of paths")
    batch.add_argument("-m", "--model", action="append", required=True, metavar="MODEL_DIR",
                       help="exported model directory, or demo (repeat for top-down)")  # fmt: skip
    batch.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for outputs and manifest")
    batch.add_argument("--format", action="append", default=[], metavar="analysis-h5|slp|nwb",
                       help="output formats, comma-separated or repeated (default analysis-h5)")  # fmt: skip
    batch.add_argument("--engine", default="local", choices=["local", "ray"],
                       help="local (default): pipelines in this process; ray: Ray actors (pip install 'posestream[ray]')")  # fmt: skip
    batch.add_argument("--workers", type=int, default=2, help="pipelines (local) or actors (ray) at once (default 2)")
    batch.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    batch.add_argument("--gpus-per-worker", type=float, metavar="F", help="Ray: GPUs per actor (0.5: two per GPU)")
    batch.add_argument("--shard", metavar="I/N", help="only the I-th of N shares of the inputs (I from 0), e.g. for SLURM arrays")
    batch.add_argument("--split-frames", type=int, metavar="F",
                       help="run videos longer than F frames in keyframe-aligned parts of at least F frames, in "
                       "parallel, merged into one output (identities stitched across the cuts)")  # fmt: skip
    batch.add_argument("--batch-size", type=int, help="frames per inference batch (default 4 on cpu, 16 on cuda)")
    batch.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"])
    batch.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    batch.add_argument("--peak-threshold", type=float, help="drop points whose peak is lower (default: the model's)")
    batch.add_argument("--max-instances", type=int, help="most animals per frame (default: the model's)")
    batch.add_argument("--max-missing", type=float, default=0.01, metavar="FRACTION",
                       help="a video whose frames fail to decode beyond this fraction counts as failed (default "
                       "0.01); the manifest records the frames missing either way")  # fmt: skip
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(batch)
    batch.set_defaults(run=_batch)
