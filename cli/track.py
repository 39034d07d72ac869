"""``track``, ``bench``, ``retrack`` and ``recover``: a video through exported models, and its outputs
after."""

from __future__ import annotations

import argparse
import json
import sys

from posestream.cli import options as opt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    track = sub.add_parser(
        "track",
        help="predict poses on a video with exported models and write SLEAP output files",
        description="Run a video through exported models (posestream export): one model directory for "
        "single-instance or bottom-up, two (centroid + centered-instance, any order) for top-down, a "
        "centroid alone for one point per animal. -o names every format by its stem (default beside the "
        "video, as SLEAP does: VIDEO.predictions.h5); --format: analysis-h5, slp (posestream[slp]) or nwb "
        "(posestream[nwb]), by default what -o ends in (.slp, .nwb), else analysis-h5.",
    )
    _add_run_arguments(track)
    opt.OUTPUT.add(track, metavar="OUT.h5")
    opt.FORMAT.add(track, metavar="analysis-h5|slp|nwb")
    opt.add_thresholds(track)
    opt.MAX_MISSING.add(track)
    opt.OVERWRITE.add(track)
    opt.QUIET.add(track)
    opt.add_tracking(track)
    track.set_defaults(run=run_track)

    bench = sub.add_parser(
        "bench",
        help="measure decode-only, model-only, postprocess-only and end-to-end FPS, and peak memory",
        description="Benchmark one pose model on one video: each stage alone, and the whole pipeline in "
        "rounds alternating with the model alone, so both are measured under the same machine state.",
    )
    _add_run_arguments(bench)
    bench.add_argument(
        "--rounds", type=int, help="end-to-end chunks, each followed by 5 s of model-only (default 6)"
    )
    opt.JSON.add(bench)
    opt.add_tracking(bench)
    bench.set_defaults(run=run_bench)

    retrack = sub.add_parser(
        "retrack",
        help="give the poses of a predictions file identities (no models), into a new file",
        description="Run the online tracker over a predictions file (analysis .h5 or .slp: ours, SLEAP's or "
        "sleap-nn's; its own tracks are ignored), frame by frame, and write the tracked poses to OUT "
        "(.h5 or .slp, by suffix). Takes the tracking options of track; --fps (default: read from the "
        "video the file names) turns --track-max-age into frames.",
    )
    retrack.add_argument("predictions", metavar="PREDICTIONS.{h5,slp}")
    opt.OUTPUT.add(retrack, required=True, metavar="OUT.{h5,slp}")
    opt.FPS.add(retrack)
    opt.OVERWRITE.add(retrack)
    opt.QUIET.add(retrack)
    opt.add_tracking(retrack, flag=False)
    retrack.set_defaults(run=run_retrack)

    recover = sub.add_parser(
        "recover",
        help="make an analysis HDF5 left by a killed run readable by any HDF5 tool",
        description="Rewrite an analysis HDF5 file whose writer was killed as a plain HDF5 "
        "file, keeping every frame that was flushed.",
    )
    recover.add_argument("file", metavar="OUT.h5")
    recover.set_defaults(run=run_recover)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The video, models and run settings that ``track`` and ``bench`` share."""
    parser.add_argument(
        "-i", "--input", required=True, metavar="VIDEO", help="video file (or HDF5 video dataset)"
    )
    opt.add_model(parser)
    opt.FRAMES.add(parser)
    opt.BATCH_SIZE.add(parser)
    opt.add_threads(parser)


def run_track(args: argparse.Namespace) -> int:
    from posestream.engine.commands.track import (
        TrackOptions,
        default_output,
        format_summary,
        formats_for,
        too_many_missing,
        track,
    )

    options = TrackOptions(
        frames=args.frames,
        batch_size=args.batch_size,
        backend=args.backend,
        device=args.device,
        peak_threshold=args.peak_threshold,
        max_instances=args.max_instances,
        formats=opt.formats(args) or formats_for(args.output),
        workers=args.workers,
        progress=not args.quiet,
        tracking=opt.tracker_config(args),
        threads=args.threads,
        decode_threads=args.decode_threads,
        overwrite=args.overwrite,
        max_missing=args.max_missing,
    )
    summary, paths = track(args.input, args.model, args.output or default_output(args.input), options)
    print(format_summary(summary, paths))
    if summary.interrupted:
        return 130
    if failed := too_many_missing(summary.frames, len(summary.missing_frames), options):
        print(f"posestream track: {args.input}: {failed}", file=sys.stderr)
        return 3
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from posestream.engine.commands.bench import bench, format_result

    result = bench(
        args.input,
        args.model,
        args.batch_size,
        args.frames,
        args.workers,
        args.device,
        args.backend,
        args.rounds,
        opt.tracker_config(args),
        args.threads,
        args.decode_threads,
    )
    print(format_result(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_dict(), f, indent=2)
        print(f"results written to {args.json}")
    return 0


def run_retrack(args: argparse.Namespace) -> int:
    from posestream.core.errors import ConfigError
    from posestream.engine.commands.retrack import format_summary, retrack

    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps must be > 0, got {args.fps}")
    summary = retrack(
        args.predictions,
        args.output,
        opt.tracker_config(args, flag_required=False),
        args.fps,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(format_summary(summary))
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from posestream.engine.sinks.analysis_h5 import recover_analysis_h5

    frames = recover_analysis_h5(args.file)
    print(f"{args.file}: rewritten as a plain HDF5 file with {frames} processed frames")
    return 0
