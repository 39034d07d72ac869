"""``live``, ``camera-sim``, ``listen`` and ``keys``: ZeroMQ cameras in, live poses out, and their tools."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from posestream.cli import options as opt
from posestream.core.errors import ConfigError

LOOPBACK_NOTE = "addresses: tcp://127.0.0.1:PORT or ipc://PATH (another host needs --allow-remote)"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    live = sub.add_parser(
        "live",
        help="poses and identities from live ZeroMQ cameras, published as they are made",
        description="Serve live cameras (posestream.live.CameraPublisher, or camera-sim) with one model: "
        "frames of every camera batched together, the oldest dropped when behind, a tracker per camera, a "
        "closed-loop hook, poses published and recorded (-o OUT.h5: OUT.cam<id>.h5 per camera). "
        f"{LOOPBACK_NOTE}.",
    )
    opt.add_model(live)
    live.add_argument(
        "--camera", action="append", required=True, metavar="ADDR", help="a camera's address (repeat)"
    )
    live.add_argument("--publish", metavar="ADDR", help="publish poses and statistics here (PUB, bound)")
    opt.OUTPUT.add(live, metavar="OUT.h5")
    live.add_argument(
        "--processor", metavar="module:Class", help="closed-loop hook: process(frame, meta) per frame"
    )
    opt.MAX_BATCH.add(live, default=4)
    opt.DURATION.add(live)
    live.add_argument("--stats-json", metavar="FILE", help="write the final figures per camera here")
    live.add_argument(
        "--queue",
        type=int,
        default=4,
        help="frames of each camera waiting for the model before the oldest drops (default 4)",
    )
    live.add_argument(
        "--gather-ms",
        type=float,
        default=1.0,
        help="with several cameras, how long a batch waits for the others' frames (default 1)",
    )
    live.add_argument(
        "--silent-after",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="report a camera with no frame for this long (default 2)",
    )
    live.add_argument(
        "--hook-slow-ms", type=float, default=5.0, help="warn when the processor takes longer (default 5)"
    )
    opt.THREADS.add(live)
    opt.add_thresholds(live)
    opt.LOSSLESS.add(live)
    opt.QUIET.add(live)
    opt.add_security(live)
    opt.add_tracking(live)
    rig = live.add_argument_group(
        "3D poses",
        "with --calibration, the frames of each moment are joined in 3D: published as pose3d "
        "messages, recorded to OUT.3d.h5",
    )
    opt.RIG_CALIBRATION.add(rig)
    rig.add_argument(
        "--camera-names",
        type=lambda text: tuple(n.strip() for n in text.split(",") if n.strip()),
        default=(),
        metavar="NAME,...",
        help="the calibrated name of camera id 0, 1, ... (default: the calibration's cameras, in its order)",
    )
    rig.add_argument(
        "--group-tolerance-ms",
        type=float,
        metavar="MS",
        help="frames captured this close together are one moment (default 5)",
    )
    rig.add_argument(
        "--group-wait-ms",
        type=float,
        metavar="MS",
        help="how long a moment waits for a late camera before it is triangulated without it (default 20)",
    )
    live.set_defaults(run=run_live)

    sim = sub.add_parser(
        "camera-sim",
        help="replay a video as live cameras (for tests, demos and latency benchmarks)",
        description="Send a video's frames as K cameras (or each of several videos as its own camera: "
        "synth --cameras N makes a rig's) on an absolute schedule (a late frame never delays the next), "
        f"waiting first for an engine to subscribe. {LOOPBACK_NOTE}.",
    )
    sim.add_argument(
        "video", nargs="+", metavar="VIDEO", help="the video; several: camera k sends the k-th one's frames"
    )
    sim.add_argument("--address", required=True, metavar="ADDR", help="address to bind (XPUB)")
    sim.add_argument(
        "--rate", type=float, default=30.0, metavar="HZ", help="frames per second per camera (default 30)"
    )
    opt.CAMERAS.add(sim, default=1)
    sim.add_argument("--loop", action="store_true", help="start the video again at its end")
    opt.FRAMES.add(sim)
    opt.DURATION.add(sim)
    sim.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="wait this long for an engine to subscribe before sending (default 10)",
    )
    opt.LOSSLESS.add(sim)
    opt.add_security(sim)
    sim.set_defaults(run=run_camera_sim)

    listen = sub.add_parser(
        "listen",
        help="print or record an engine's live poses",
        description="Subscribe to posestream live --publish ADDR; -o OUT.h5 records to "
        f"OUT.cam<id>.h5 per camera. {LOOPBACK_NOTE}.",
    )
    listen.add_argument("address", metavar="ADDR")
    opt.OUTPUT.add(listen, metavar="OUT.h5")
    opt.NUM_FRAMES.add(listen)
    opt.DURATION.add(listen)
    listen.add_argument(
        "--idle-timeout", type=float, metavar="SECONDS", help="stop after this long without a frame"
    )
    opt.QUIET.add(listen)
    opt.add_security(listen)
    listen.set_defaults(run=run_listen)

    keys = sub.add_parser("keys", help="make a CURVE key directory for live sockets across machines")
    keys.add_argument("directory", metavar="KEY_DIR")
    keys.set_defaults(run=run_keys)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_live(args: argparse.Namespace) -> int:
    from posestream.engine.live.session import LiveOptions, LiveSession
    from posestream.engine.threads import load_warning

    _logging()
    options = LiveOptions(
        cameras=tuple(args.camera),
        publish=args.publish,
        record=args.output,
        tracking=opt.tracker_config(args),
        processor=args.processor,
        max_batch=args.max_batch,
        duration=args.duration,
        queue_frames=args.queue,
        gather_ms=args.gather_ms,
        silent_after=args.silent_after,
        hook_slow_ms=args.hook_slow_ms,
        stats_json=args.stats_json,
        allow_remote=args.allow_remote,
        curve=args.curve,
        device=args.device,
        backend=args.backend,
        threads=args.threads,
        peak_threshold=args.peak_threshold,
        max_instances=args.max_instances,
        status=not args.quiet,
        lossless=args.lossless,
    )
    if warning := load_warning():
        print(f"live: warning: {warning} (latency and drops)", file=sys.stderr)
    session = LiveSession(args.model, options, steps=_steps(args))
    publishing = f", publishing on {options.publish}" if options.publish else ""
    print(
        f"live: {len(options.cameras)} camera address(es), model {session.predictor.kind} "
        f"{'x'.join(map(str, session.predictor.input_shape))}{publishing}; Ctrl-C stops",
        file=sys.stderr,
    )
    summary = session.run()
    print(file=sys.stderr)
    for camera, stats in summary.cameras.items():
        latency = stats["latency_ms"]
        print(
            f"camera {camera}: sent {stats['frames_sent']}, received {stats['frames_received']}, dropped "
            f"{stats['frames_dropped']} ({stats['dropped_in_queue']} by the engine's queue), published "
            f"{stats['frames_published']}; latency ms p50 {latency['p50']} p99 {latency['p99']} "
            f"max {latency['max']}"
        )
    if "three_d" in summary.steps:
        print(three_d_line(summary.steps["three_d"]))
    if summary.malformed:
        print(f"malformed messages refused: {json.dumps(summary.malformed)}")
    if summary.hook_errors:
        print(f"processor errors: {summary.hook_errors}")
    for path in summary.recordings:
        print(f"recording: {path}")
    if options.stats_json:
        print(f"figures written to {options.stats_json}")
    return 0


def _steps(args: argparse.Namespace) -> list:
    """The live session's steps: 3D poses with --calibration."""
    grouping = {"tolerance_ms": args.group_tolerance_ms, "max_wait_ms": args.group_wait_ms}
    grouping = {k: v for k, v in grouping.items() if v is not None}
    if args.calibration is None:
        if args.camera_names or grouping:
            raise ConfigError(
                "--camera-names, --group-tolerance-ms and --group-wait-ms are for a calibrated rig's 3D "
                "poses: give --calibration too"
            )
        return []
    from posestream.multiview.live_sink import Live3DOptions

    return [Live3DOptions(args.calibration, args.camera_names, **grouping).step]


def three_d_line(figures: dict) -> str:
    """The 3D step's final figures in a sentence."""
    step, latency = figures["step_ms"], figures["latency_ms"]
    return (
        f"3D: {figures['groups_published']} groups published ({figures['groups_complete']} with every "
        f"camera, {figures['groups_partial']} without some); frames grouped {figures['frames_grouped']}, "
        f"late {figures['frames_late']}; 3D step ms p50 {step['p50']} p99 {step['p99']}; camera to 3D ms p50 "
        f"{latency['p50']} p99 {latency['p99']}"
    )


def run_camera_sim(args: argparse.Namespace) -> int:
    from posestream.engine.interrupts import interrupt_on_signals
    from posestream.engine.live.sim import SimOptions, camera_sim

    options = SimOptions(
        args.address,
        args.rate,
        args.cameras,
        args.loop,
        args.frames,
        args.duration,
        args.wait,
        args.allow_remote,
        args.curve,
        args.lossless,
    )
    interrupt_on_signals()
    summary = camera_sim(args.video if len(args.video) > 1 else args.video[0], options)
    if not summary.subscribed:
        print(
            f"camera-sim: no engine subscribed within {args.wait} s; frames were sent to nobody",
            file=sys.stderr,
        )
    print(
        f"camera-sim: {summary.frames} frames x {summary.cameras} camera(s) in {summary.seconds:.2f} s: "
        f"{summary.rate:.2f} Hz achieved of {args.rate:g} Hz asked; {summary.late} frames sent > 1 ms late"
    )
    return 0


def run_listen(args: argparse.Namespace) -> int:
    from posestream.engine.interrupts import interrupt_on_signals
    from posestream.engine.live.listen import listen
    from posestream.live.security import Curve

    interrupt_on_signals()
    curve = Curve(args.curve) if args.curve else None
    three_d = None
    if args.output:  # 3D messages, if the engine sends any, to OUT.3d.h5
        from posestream.engine.live.recorder import three_d_path
        from posestream.multiview.live_recording import MessageRecording

        three_d = MessageRecording(three_d_path(args.output))
    summary = listen(
        args.address,
        args.output,
        frames=args.num_frames,
        duration=args.duration,
        idle_timeout=args.idle_timeout,
        quiet=args.quiet,
        three_d=three_d,
        allow_remote=args.allow_remote,
        curve=curve,
    )
    cameras = ", ".join(f"camera {c}: {n}" for c, n in sorted(summary.cameras.items()))
    groups = f", {summary.groups} 3D groups" if summary.groups else ""
    print(
        f"listen: {summary.frames} frames{groups} in {summary.seconds:.1f} s ({cameras or 'none'})",
        file=sys.stderr,
    )
    for path in summary.recordings:
        print(f"recording: {path}", file=sys.stderr)
    return 0


def run_keys(args: argparse.Namespace) -> int:
    from posestream.live.security import write_keys

    directory = write_keys(args.directory)
    print(
        f"keys written to {directory}: copy the directory to the camera, engine and client hosts "
        "(the server secret key only where sockets bind) and pass --allow-remote --curve DIR"
    )
    return 0
