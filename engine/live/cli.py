"""The live subcommands: ``live``, ``camera-sim``, ``listen`` and ``keys``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from ..cli import add_tracking_arguments, tracker_config

LOOPBACK_NOTE = "addresses: tcp://127.0.0.1:PORT or ipc://PATH (another host needs --allow-remote)"


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _live(args: argparse.Namespace) -> int:
    from ..threads import load_warning
    from .session import LiveOptions, LiveSession

    _logging()
    options = LiveOptions(
        cameras=tuple(args.camera), publish=args.publish, record=args.output, tracking=tracker_config(args),
        processor=args.processor, max_batch=args.max_batch, duration=args.duration, queue_frames=args.queue,
        gather_ms=args.gather_ms,
        silent_after=args.silent_after, hook_slow_ms=args.hook_slow_ms, stats_json=args.stats_json,
        allow_remote=args.allow_remote, curve=args.curve, device=args.device, backend=args.backend, threads=args.threads,
        status=not args.quiet, lossless=args.lossless,
    )  # fmt: skip
    if warning := load_warning():
        print(f"live: warning: {warning} (latency and drops)", file=sys.stderr)
    session = LiveSession(args.model, options)
    print(f"live: {len(options.cameras)} camera address(es), model {session.predictor.kind} "
          f"{'x'.join(map(str, session.predictor.input_shape))}" + (f", publishing on {options.publish}" if options.publish else "")
          + "; Ctrl-C stops", file=sys.stderr)  # fmt: skip
    summary = session.run()
    print(file=sys.stderr)
    for camera, stats in summary.cameras.items():
        latency = stats["latency_ms"]
        print(f"camera {camera}: sent {stats['frames_sent']}, received {stats['frames_received']}, dropped "
              f"{stats['frames_dropped']} ({stats['dropped_in_queue']} by the engine's queue), published "
              f"{stats['frames_published']}; latency ms p50 {latency['p50']} p99 {latency['p99']} max {latency['max']}")  # fmt: skip
    if summary.malformed:
        print(f"malformed messages refused: {json.dumps(summary.malformed)}")
    if summary.hook_errors:
        print(f"processor errors: {summary.hook_errors}")
    for path in summary.recordings:
        print(f"recording: {path}")
    if options.stats_json:
        print(f"figures written to {options.stats_json}")
    return 0


def _camera_sim(args: argparse.Namespace) -> int:
    from .sim import SimOptions, camera_sim

    options = SimOptions(args.address, args.rate, args.cameras, args.loop, args.frames, args.duration, args.wait,
                         args.allow_remote, args.curve, args.lossless)  # fmt: skip
    _interrupt_on_signals()
    summary = camera_sim(args.video, options)
    if not summary.subscribed:
        print(f"camera-sim: no engine subscribed within {args.wait} s; frames were sent to nobody", file=sys.stderr)
    print(f"camera-sim: {summary.frames} frames x {summary.cameras} camera(s) in {summary.seconds:.2f} s: "
          f"{summary.rate:.2f} Hz achieved of {args.rate:g} Hz asked; {summary.late} frames sent > 1 ms late")
    return 0


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM stop the command as Ctrl-C does (also when started in the background, where the
    shell leaves SIGINT ignored)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)


def _listen(args: argparse.Namespace) -> int:
    from .listen import listen
    from .security import Curve

    _interrupt_on_signals()
    curve = Curve(args.curve) if args.curve else None
    summary = listen(args.address, args.output, frames=args.frames, duration=args.duration,
                     idle_timeout=args.idle_timeout, quiet=args.quiet, allow_remote=args.allow_remote, curve=curve)  # fmt: skip
    cameras = ", ".join(f"camera {c}: {n}" for c, n in sorted(summary.cameras.items()))
    print(f"listen: {summary.frames} frames in {summary.seconds:.1f} s ({cameras or 'none'})", file=sys.stderr)
    for path in summary.recordings:
        print(f"recording: {path}", file=sys.stderr)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from .security import write_keys

    directory = write_keys(args.directory)
    print(f"keys written to {directory}: copy the directory to the camera, engine and client hosts "
          "(the server secret key only where sockets bind) and pass --allow-remote --curve DIR")
    return 0


def _security_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-remote", action="store_true", help="allow addresses off this host (not loopback)")
    parser.add_argument("--curve", metavar="KEY_DIR", help="CURVE keys for every socket (posestream keys KEY_DIR)")


def add_live_parsers(sub) -> None:
    live = sub.add_parser(
        "live", help="poses and identities from live ZeroMQ cameras, published as they are made",
        description="Serve live cameras (posestream.live.CameraPublisher, or camera-sim) with one model: frames "
        "of every camera batched together, the oldest dropped when behind, a tracker per camera, a closed-loop "
        f"hook, poses published and recorded. {LOOPBACK_NOTE}.",
    )  # fmt: skip
    live.add_argument("-m", "--model", action="append", required=True, metavar="MODEL_DIR",
                      help="exported model directory, or demo (repeat for top-down)")  # fmt: skip
    live.add_argument("--camera", action="append", required=True, metavar="ADDR", help="a camera's address (repeat)")
    live.add_argument("--publish", metavar="ADDR", help="publish poses and statistics here (PUB, bound)")
    live.add_argument("-o", "--output", metavar="OUT.h5", help="record to OUT.cam<id>.h5 per camera (analysis HDF5)")
    live.add_argument("--processor", metavar="module:Class", help="closed-loop hook: process(frame, meta) per frame")
    live.add_argument("--max-batch", type=int, default=4,
                      help="most frames per model call, one per camera (default 4)")  # fmt: skip
    live.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
    live.add_argument("--stats-json", metavar="FILE", help="write the final figures per camera here")
    live.add_argument("--queue", type=int, default=4,
                      help="frames of each camera waiting for the model before the oldest drops (default 4)")  # fmt: skip
    live.add_argument("--gather-ms", type=float, default=1.0,
                      help="with several cameras, how long a batch waits for the others' frames (default 1)")  # fmt: skip
    live.add_argument("--silent-after", type=float, default=2.0, metavar="SECONDS",
                      help="report a camera with no frame for this long (default 2)")  # fmt: skip
    live.add_argument("--hook-slow-ms", type=float, default=5.0, help="warn when the processor takes longer (default 5)")
    live.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "tensorrt", "torch"])
    live.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    live.add_argument("--threads", type=int, default=0,
                      help="the model's CPU threads (default 0: every core; on a small machine that also runs the "
                      "camera bridge, 1 fewer than the cores trades model speed for steadier latency under load)")  # fmt: skip
    live.add_argument("--lossless", action="store_true",
                      help="queues block instead of dropping: every frame a camera-sim --lossless sends is served, "
                      "and a stop serves them up to the camera's end (replays and tests, not rigs)")  # fmt: skip
    live.add_argument("--quiet", action="store_true", help="no status line")
    _security_arguments(live)
    add_tracking_arguments(live)
    live.set_defaults(run=_live)

    sim = sub.add_parser(
        "camera-sim", help="replay a video as live cameras (for tests, demos and latency benchmarks)",
        description="Send a video's frames as K cameras on an absolute schedule (a late frame never delays the "
        f"next), waiting first for an engine to subscribe. {LOOPBACK_NOTE}.",
    )  # fmt: skip
    sim.add_argument("video", metavar="VIDEO")
    sim.add_argument("--address", required=True, metavar="ADDR", help="address to bind (XPUB)")
    sim.add_argument("--rate", type=float, default=30.0, metavar="HZ", help="frames per second per camera (default 30)")
    sim.add_argument("--cameras", type=int, default=1, metavar="K", help="cameras 0..K-1 sending the same frames")
    sim.add_argument("--loop", action="store_true", help="start the video again at its end")
    sim.add_argument("--frames", metavar="A-B", help="frames to send, e.g. 0-999 (default all)")
    sim.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    sim.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                     help="wait this long for an engine to subscribe before sending (default 10)")  # fmt: skip
    sim.add_argument("--lossless", action="store_true",
                     help="wait for the engine to take each frame instead of dropping it (with live --lossless)")  # fmt: skip
    _security_arguments(sim)
    sim.set_defaults(run=_camera_sim)

    listen = sub.add_parser("listen", help="print or record an engine's live poses",
                            description=f"Subscribe to posestream live --publish ADDR. {LOOPBACK_NOTE}.")  # fmt: skip
    listen.add_argument("address", metavar="ADDR")
    listen.add_argument("-o", "--output", metavar="OUT.h5", help="record to OUT.cam<id>.h5 per camera")
    listen.add_argument("--frames", type=int, help="stop after this many frames")
    listen.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    listen.add_argument("--idle-timeout", type=float, metavar="SECONDS", help="stop after this long without a frame")
    listen.add_argument("--quiet", action="store_true", help="do not print each frame")
    _security_arguments(listen)
    listen.set_defaults(run=_listen)

    keys = sub.add_parser("keys", help="make a CURVE key directory for live sockets across machines")
    keys.add_argument("directory", metavar="KEY_DIR")
    keys.set_defaults(run=_keys)
