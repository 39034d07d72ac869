"""The ``posestream`` command: a thin layer over the Python API.

Subcommands import what they need when they run, so ``posestream synth`` never
loads torch and a missing optional extra fails only the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import ConfigError, PosestreamError
from .extras import package_version


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480 (WIDTHxHEIGHT), got {text!r}") from None
    return width, height


def _synth(args: argparse.Namespace) -> int:
    from .synth import PerturbConfig, SynthConfig, write_synthetic_video

    width, height = args.size
    config = SynthConfig(
        frames=args.frames, width=width, height=height, animals=args.animals,
        seed=args.seed, rgb=args.rgb, fps=args.fps,
    )  # fmt: skip
    perturb = PerturbConfig(args.jitter, args.drop_nodes, args.drop_instances, args.false_instances, args.seed)
    out = write_synthetic_video(args.out, config, slp=not args.no_slp, progress=not args.quiet, perturb=perturb)
    print(f"video:        {out.video}  ({config.frames} frames, {width}x{height}, "
          f"{'RGB' if config.rgb else 'gray'}, {config.animals} animals, seed {config.seed})")  # fmt: skip
    print(f"ground truth: {out.analysis_h5}")
    if out.slp is not None:
        print(f"labels:       {out.slp}")
    for path in (out.detections_h5, out.detections_slp):
        if path is not None:
            print(f"detections:   {path}  (the ground truth perturbed, untracked)")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from .sinks.analysis_h5 import recover_analysis_h5

    frames = recover_analysis_h5(args.file)
    print(f"{args.file}: rewritten as a plain HDF5 file with {frames} processed frames")
    return 0


def _track(args: argparse.Namespace) -> int:
    from .track import TrackOptions, default_output, format_summary, formats_for, too_many_missing, track

    options = TrackOptions(
        frames=args.frames, batch_size=args.batch_size, backend=args.backend, device=args.device,
        peak_threshold=args.peak_threshold, max_instances=args.max_instances,
        formats=tuple(f for spec in args.format for f in spec.split(",")) or formats_for(args.output), workers=args.workers,
        progress=not args.quiet, tracking=tracker_config(args), threads=args.threads, decode_threads=args.decode_threads,
        overwrite=args.overwrite, max_missing=args.max_missing,
    )  # fmt: skip
    summary, paths = track(args.input, args.model, args.output or default_output(args.input), options)
    print(format_summary(summary, paths))
    if summary.interrupted:
        return 130
    if failed := too_many_missing(summary.frames, len(summary.missing_frames), options):
        print(f"posestream track: {args.input}: {failed}", file=sys.stderr)
        return 3
    return 0


def _render(args: argparse.Namespace) -> int:
    from .render import RenderOptions, render

    options = RenderOptions(frames=args.frames, trails=args.trails, line_width=args.line_width, progress=not args.quiet)
    frames = render(args.video, args.predictions, args.output, options)
    print(f"{frames} frames drawn: {args.output}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from .bench import bench, format_result

    result = bench(args.input, args.model, args.batch_size, args.frames, args.workers, args.device, args.backend,
                   args.rounds, tracker_config(args), args.threads, args.decode_threads)
    print(format_result(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_dict(), f, indent=2)
        print(f"results written to {args.json}")
    return 0


def _retrack(args: argparse.Namespace) -> int:
    from .tracking.retrack import format_summary, retrack

    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps must be > 0, got {args.fps}")
    summary = retrack(args.predictions, args.output, tracker_config(args, flag_required=False), args.fps,
                      progress=not args.quiet, overwrite=args.overwrite)  # fmt: skip
    print(format_summary(summary))
    return 0


_TRACKING_OPTIONS = {  # argparse dest -> TrackerConfig field
    "max_tracks": "max_tracks", "similarity": "similarity", "match": "match", "track_max_age": "max_age",
    "kalman": "kalman",
}  # fmt: skip


def add_tracking_arguments(parser: argparse.ArgumentParser, flag: bool = True) -> None:
    """SLEAP's and sleap-nn's tracking option names; ``flag``: tracking is asked for with --tracking."""
    group = parser.add_argument_group("tracking", "identities across frames, online (engine/tracking)")
    if flag:
        group.add_argument("--tracking", action="store_true", help="give instances identities across frames")
    group.add_argument("--max-tracks", type=int, metavar="N",
                       help="the number of animals: never more than N identities (default: no limit)")  # fmt: skip
    group.add_argument("--similarity", metavar="oks|centroid|iou",
                       help="detection-to-track similarity (default oks, with a per-instance scale)")  # fmt: skip
    group.add_argument("--match", metavar="hungarian|greedy", help="assignment (default hungarian)")
    group.add_argument("--track-max-age", type=float, metavar="SECONDS",
                       help="how long a lost track waits for its animal to come back (default 1 s of video time)")  # fmt: skip
    group.add_argument("--kalman", action="store_true", default=None,
                       help="predict motion with a Kalman filter per track (default: smoothed velocity)")  # fmt: skip


def tracker_config(args: argparse.Namespace, flag_required: bool = True):
    """The TrackerConfig the tracking options ask for; None when tracking is off (then none may be given)."""
    from .tracking.config import TrackerConfig

    given = {field: getattr(args, dest) for dest, field in _TRACKING_OPTIONS.items() if getattr(args, dest) is not None}
    if flag_required and not args.tracking:
        if given:
            names = ", ".join("--" + dest.replace("_", "-") for dest in _TRACKING_OPTIONS if getattr(args, dest) is not None)
            raise ConfigError(f"{names} set how to track, but tracking is off: add --tracking")
        return None
    return TrackerConfig(**given)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The video, models and run settings that ``track`` and ``bench`` share."""
    parser.add_argument("-i", "--input", required=True, metavar="VIDEO", help="video file (or HDF5 video dataset)")
    parser.add_argument("-m", "--model", action="append", required=True, metavar="MODEL_DIR",
                        help="exported model directory, or demo (repeat for top-down)")  # fmt: skip
    parser.add_argument("--frames", metavar="A-B", help="frames to process, e.g. 0-999,2000- (default all)")
    parser.add_argument("--batch-size", type=int, help="frames per inference batch (default on cpu: 1-16 by the network's input size, see README; 16 on cuda)")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"],
                        help="auto (default): onnxruntime on CPU; on CUDA the first available of TensorRT (model.plan), "
                        "torch (model.pt2), onnxruntime-gpu. tensorrt: model.plan, else onnxruntime's TensorRT "
                        "provider. torch: model.pt2")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N (needs posestream[gpu])")
    parser.add_argument("--workers", type=int, help="postprocessing threads (default: the thread budget's: 0 for a light network, 1 at batch size 1, else 2)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="the network's CPU threads (default: the thread budget, README 'Benchmark throughput')")  # fmt: skip
    parser.add_argument("--decode-threads", type=int, metavar="N",
                        help="FFmpeg's decoder threads, 0: FFmpeg chooses (default: the thread budget)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posestream", description="High-throughput streaming pose estimation."
    )
    parser.add_argument("--version", action="version", version=f"posestream {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices  # name -> the command's parser

    synth = sub.add_parser(
        "synth",
        help="render a synthetic video of moving animals with known keypoints",
        description="Render a synthetic H.264 video and write its ground truth beside it "
        "(OUT.analysis.h5, and OUT.slp when posestream[slp] is installed).",
    )
    synth.add_argument("out", metavar="OUT.mp4", help="video to write")
    synth.add_argument("--frames", type=int, default=300, help="number of frames (default 300)")
    synth.add_argument("--size", type=_size, default=(384, 384), metavar="WxH", help="frame size (default 384x384)")
    synth.add_argument("--animals", type=int, default=2, help="number of animals (default 2)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; same seed, same video (default 0)")
    synth.add_argument("--rgb", action="store_true", help="colour video (default gray)")
    synth.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    synth.add_argument("--no-slp", action="store_true", help="skip the .slp labels (faster for long videos)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    noise = synth.add_argument_group(
        "detections", "also write the ground truth perturbed into untracked detections (OUT.detections.h5/.slp), "
        "the input a tracker gets")  # fmt: skip
    noise.add_argument("--jitter", type=float, default=0.0, metavar="PX", help="node noise, pixels (std per coordinate)")
    noise.add_argument("--drop-nodes", type=float, default=0.0, metavar="F", help="fraction of nodes missing")
    noise.add_argument("--drop-instances", type=float, default=0.0, metavar="F",
                       help="fraction of instances missing (in runs of 1-5 frames)")  # fmt: skip
    noise.add_argument("--false-instances", type=float, default=0.0, metavar="F",
                       help="false instances per true one (fragments of animals and phantoms)")  # fmt: skip
    synth.set_defaults(run=_synth)

    recover = sub.add_parser(
        "recover",
        help="make an analysis HDF5 left by a killed run readable by any HDF5 tool",
        description="Rewrite an analysis HDF5 file whose writer was killed as a plain HDF5 "
        "file, keeping every frame that was flushed.",
    )
    recover.add_argument("file", metavar="OUT.h5")
    recover.set_defaults(run=_recover)

    track = sub.add_parser(
        "track",
        help="predict poses on a video with exported models and write SLEAP output files",
        description="Run a video through exported models (posestream export): one model directory for "
        "single-instance or bottom-up, two (centroid + centered-instance, any order) for top-down, "
        "a centroid alone for one point per animal.",
    )
    _add_run_arguments(track)
    track.add_argument("-o", "--output", metavar="OUT.h5",
                       help="output path (its stem names every format); default beside the video, as SLEAP does: "
                       "VIDEO.predictions.h5 (.slp, .nwb for those formats)")  # fmt: skip
    track.add_argument("--format", action="append", default=[], metavar="analysis-h5|slp|nwb",
                       help="output formats, comma-separated or repeated (default: what -o ends in, .slp or .nwb, "
                       "else analysis-h5; slp needs posestream[slp], nwb posestream[nwb])")  # fmt: skip
    track.add_argument("--peak-threshold", type=float, help="drop points whose peak is lower (default: the model's)")
    track.add_argument("--max-instances", type=int, help="most animals per frame (default: the model's)")
    track.add_argument("--max-missing", type=float, default=0.01, metavar="FRACTION",
                       help="exit with status 3 when more than this fraction of the frames fail to decode (default "
                       "0.01; the output marks them missing either way)")  # fmt: skip
    track.add_argument("--overwrite", action="store_true",
                       help="replace an output file that exists and does not hold predictions posestream wrote")  # fmt: skip
    track.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(track)
    track.set_defaults(run=_track)

    bench = sub.add_parser(
        "bench",
        help="measure decode-only, model-only, postprocess-only and end-to-end FPS, and peak memory",
        description="Benchmark one pose model on one video: each stage alone, and the whole pipeline in "
        "rounds alternating with the model alone, so both are measured under the same machine state.",
    )
    _add_run_arguments(bench)
    bench.add_argument("--rounds", type=int,
                       help="end-to-end chunks, each followed by 5 s of model-only (default 6)")
    bench.add_argument("--json", metavar="OUT.json", help="also write the results (decode_fps, model_fps, ...)")
    add_tracking_arguments(bench)
    bench.set_defaults(run=_bench)

    render = sub.add_parser(
        "render",
        help="draw poses on their video (a colour per identity, optional trails) into an overlay video",
        description="Draw the poses of PREDICTIONS (our analysis .h5, or any .slp: SLEAP's, sleap-nn's, ours) on "
        "VIDEO: each instance's skeleton in its track's colour (untracked: white), and with --trails N each "
        "track's path over its last N frames.",
    )
    render.add_argument("video", metavar="VIDEO")
    render.add_argument("predictions", metavar="PREDICTIONS.{h5,slp}")
    render.add_argument("-o", "--output", required=True, metavar="OVERLAY.mp4")
    render.add_argument("--frames", metavar="A-B", help="frames to draw, e.g. 0-999 (default all)")
    render.add_argument("--trails", type=int, default=0, metavar="N", help="trail of each track's last N frames")
    render.add_argument("--line-width", type=float, default=0.0, metavar="PX", help="default: from the frame size")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(run=_render)

    retrack = sub.add_parser(
        "retrack",
        help="give the poses of a predictions file identities (no models), into a new file",
        description="Run the online tracker over a predictions file (analysis .h5 or .slp: ours, SLEAP's or "
        "sleap-nn's; its own tracks are ignored), frame by frame, and write the tracked poses to OUT "
        "(.h5 or .slp). Takes the tracking options of track.",
    )
    retrack.add_argument("predictions", metavar="PREDICTIONS.{h5,slp}")
    retrack.add_argument("-o", "--output", required=True, metavar="OUT.{h5,slp}", help="tracked output (format by suffix)")
    retrack.add_argument("--fps", type=float,
                         help="frame rate, for --track-max-age in seconds (default: read from the video the file names)")  # fmt: skip
    retrack.add_argument("--overwrite", action="store_true",
                         help="replace OUT if it exists and does not hold predictions posestream wrote")  # fmt: skip
    retrack.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(retrack, flag=False)
    retrack.set_defaults(run=_retrack)

    from posestream.export.cli import add_export_parser, add_import_parser

    from .batch.cli import add_batch_parser
    from .live.cli import add_live_parsers
    from posestream.train.cli import add_evaluate_parser, add_pack_parser, add_preview_rf_parser, add_train_parser

    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_pack_parser(sub)
    add_preview_rf_parser(sub)
    add_export_parser(sub)
    add_import_parser(sub)
    add_live_parsers(sub)
    add_batch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its usage (not the top level's)
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except (PosestreamError, FileNotFoundError) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"posestream {args.command}: {kind}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posestream {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout piped into a reader that stopped (e.g. `| head`); the files are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141


if __name__ == "__main__":
    sys.exit(main())
