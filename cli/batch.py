"""``batch``: whole archives, many videos on many workers, resumable (``engine.batch.run_batch``)."""

from __future__ import annotations

import argparse
import os

from posestream.cli import options as opt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser(
        "batch",
        help="run whole archives: many videos on many workers, resumable",
        description="Predict poses on every video of INPUTS (video files, folders searched recursively, text "
        "files listing videos) into OUT_DIR/<path under the inputs' common folder>.predictions.h5, with a "
        "manifest (OUT_DIR/manifest.jsonl). Run the same command again to finish: done videos are checked "
        "and skipped; changed videos or models are redone. A failed video fails only itself. --format: "
        "analysis-h5 (default), slp, nwb.",
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, folder, or text file of paths")
    opt.add_model(batch)
    opt.OUTPUT.add(batch, required=True, metavar="OUT_DIR")
    opt.FORMAT.add(batch, metavar="analysis-h5|slp|nwb")
    batch.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="local (default): pipelines in this process; ray: Ray actors (pip install 'posestream[ray]')",
    )
    batch.add_argument(
        "--jobs", type=int, default=2, help="pipelines (local) or actors (ray) at once (default 2)"
    )
    batch.add_argument("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    batch.add_argument(
        "--gpus-per-worker", type=float, metavar="F", help="Ray: GPUs per actor (0.5: two per GPU)"
    )
    batch.add_argument(
        "--shard",
        metavar="I/N",
        help="only the I-th of N shares of the inputs (I from 0), e.g. for SLURM arrays",
    )
    batch.add_argument(
        "--split-frames",
        type=int,
        metavar="F",
        help="run videos longer than F frames in keyframe-aligned parts of at least F frames, in "
        "parallel, merged into one output (identities stitched across the cuts)",
    )
    opt.BATCH_SIZE.add(batch)
    opt.add_thresholds(batch)
    opt.MAX_MISSING.add(batch)
    opt.QUIET.add(batch)
    opt.add_tracking(batch)
    opt.RIG_CALIBRATION.add(batch)  # then each session (one subfolder per camera) into <session>/points3d.h5
    batch.set_defaults(run=run_batch)


def run_batch(args: argparse.Namespace) -> int:
    from posestream.engine.batch.progress import format_summary
    from posestream.engine.batch.runner import BatchOptions, run_batch
    from posestream.engine.commands.track import TrackOptions

    track = TrackOptions(
        batch_size=args.batch_size,
        backend=args.backend,
        device=args.device,
        peak_threshold=args.peak_threshold,
        max_instances=args.max_instances,
        formats=opt.formats(args) or ("analysis-h5",),
        workers=1,
        progress=False,
        tracking=opt.tracker_config(args),
        max_missing=args.max_missing,
    )
    options = BatchOptions(
        track,
        args.engine,
        args.jobs,
        args.ray_address,
        args.gpus_per_worker,
        args.shard,
        args.split_frames,
        progress=not args.quiet,
    )
    if args.calibration:  # a bad calibration is said before the batch, not after it
        from posestream.multiview.calibration_file import read_calibration

        read_calibration(args.calibration)
    summary = run_batch(args.inputs, args.model, args.output, options)
    print(format_summary(summary))
    if args.calibration and not summary.interrupted:
        return max(summary.exit_code, _triangulate_sessions(args.output, args.calibration))
    return summary.exit_code


def _triangulate_sessions(out_dir: str, calibration: str) -> int:
    """Each session's 3D file; 1 when one failed (each said on a line), else 0."""
    from posestream.multiview.sessions import triangulate_sessions

    results = triangulate_sessions(out_dir, calibration, threads=os.cpu_count() or 1)
    for r in results:
        where = r.output if r.output else r.reason
        print(f"3D {r.status}: {r.session} ({', '.join(r.cameras)}): {where}")
    if not results:
        print(f"3D: no session in {out_dir} has a folder named after a camera of {calibration}")
    return 1 if any(r.status == "failed" for r in results) or not results else 0
