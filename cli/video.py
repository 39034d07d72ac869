"""``synth`` and ``render``: videos made (synthetic, with known poses) and drawn on (poses over their
video)."""

from __future__ import annotations

import argparse

from posestream.cli import options as opt
from posestream.core.errors import ConfigError


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must look like 640x480 (WIDTHxHEIGHT), got {text!r}"
        ) from None
    return width, height


def add_parsers(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser(
        "synth",
        help="render a synthetic video of moving animals with known keypoints",
        description="Render a synthetic H.264 video and write its ground truth beside it "
        "(OUT.analysis.h5, and OUT.slp when posestream[slp] is installed).",
    )
    synth.add_argument("out", metavar="OUT.mp4", help="video to write (with --cameras: a folder)")
    opt.NUM_FRAMES.add(synth, default=300)
    synth.add_argument(
        "--size", type=_size, default=(384, 384), metavar="WxH", help="frame size (default 384x384)"
    )
    synth.add_argument("--animals", type=int, default=2, help="number of animals (default 2)")
    opt.SEED.add(synth, default=0)
    synth.add_argument("--rgb", action="store_true", help="colour video (default gray)")
    synth.add_argument(
        "--identities",
        action="store_true",
        help="animals that differ visibly (body shade, marks on the back), each its own track: data for "
        "multi-class (identity) models",
    )
    opt.FPS.add(synth, default=30.0)
    synth.add_argument("--no-slp", action="store_true", help="skip the .slp labels (faster for long videos)")
    opt.QUIET.add(synth)
    views = synth.add_argument_group(
        "several cameras",
        "one 3D scene (animals in a 400 mm box) filmed by N virtual cameras on a ring: into the folder OUT, "
        "each camera's video NAME.mp4, its 2D truth NAME.analysis.h5 (and with --jitter NAME.detections.h5), "
        "the 3D truth truth3d.h5 and the cameras' calibration",
    )
    opt.CAMERAS.add(views, default=0)
    opt.RIG_CALIBRATION.add(views)  # where synth writes it (default OUT/calibration.toml)
    views.add_argument(
        "--no-video", action="store_true", help="with --cameras: the 2D and 3D truth only, no videos (fast)"
    )
    views.add_argument(
        "--camera-size",
        type=_size,
        default=(1280, 1024),
        metavar="WxH",
        help="each camera's frame size (default 1280x1024)",
    )
    noise = synth.add_argument_group(
        "detections",
        "also write the ground truth perturbed into untracked detections (OUT.detections.h5/.slp), "
        "the input a tracker gets",
    )
    noise.add_argument(
        "--jitter", type=float, default=0.0, metavar="PX", help="node noise, pixels (std per coordinate)"
    )
    noise.add_argument("--drop-nodes", type=float, default=0.0, metavar="F", help="fraction of nodes missing")
    noise.add_argument(
        "--drop-instances",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of instances missing (in runs of 1-5 frames)",
    )
    noise.add_argument(
        "--false-instances",
        type=float,
        default=0.0,
        metavar="F",
        help="false instances per true one (fragments of animals and phantoms)",
    )
    synth.set_defaults(run=run_synth)

    render = sub.add_parser(
        "render",
        help="draw poses on their video (a colour per identity, optional trails) into an overlay video",
        description="Draw the poses of PREDICTIONS (our analysis .h5, or any .slp: SLEAP's, sleap-nn's, "
        "ours) on VIDEO: each instance's skeleton in its track's colour (untracked: white), and with "
        "--trails N each track's path over its last N frames. With --calibration and --view, "
        "PREDICTIONS is a 3D poses file (triangulate's), drawn where that camera sees it.",
    )
    render.add_argument("video", metavar="VIDEO")
    render.add_argument("predictions", metavar="PREDICTIONS.{h5,slp}")
    opt.OUTPUT.add(render, required=True, metavar="OVERLAY.mp4")
    opt.FRAMES.add(render)
    render.add_argument(
        "--trails", type=int, default=0, metavar="N", help="trail of each track's last N frames"
    )
    render.add_argument(
        "--line-width", type=float, default=0.0, metavar="PX", help="default: from the frame size"
    )
    opt.RIG_CALIBRATION.add(render)
    render.add_argument("--view", metavar="NAME", help="with --calibration: the camera that filmed VIDEO")
    opt.QUIET.add(render)
    render.set_defaults(run=run_render)


def run_synth(args: argparse.Namespace) -> int:
    from posestream.engine.synth import PerturbConfig, SynthConfig, write_synthetic_video

    if args.cameras or args.calibration:
        return run_synth_scene(args)

    width, height = args.size
    config = SynthConfig(
        frames=args.num_frames,
        width=width,
        height=height,
        animals=args.animals,
        seed=args.seed,
        rgb=args.rgb,
        fps=args.fps,
        identities=args.identities,
    )
    perturb = PerturbConfig(
        args.jitter, args.drop_nodes, args.drop_instances, args.false_instances, args.seed
    )
    out = write_synthetic_video(
        args.out, config, slp=not args.no_slp, progress=not args.quiet, perturb=perturb
    )
    print(
        f"video:        {out.video}  ({config.frames} frames, {width}x{height}, "
        f"{'RGB' if config.rgb else 'gray'}, {config.animals} animals, seed {config.seed})"
    )
    print(f"ground truth: {out.analysis_h5}")
    if out.slp is not None:
        print(f"labels:       {out.slp}")
    for path in (out.detections_h5, out.detections_slp):
        if path is not None:
            print(f"detections:   {path}  (the ground truth perturbed, untracked)")
    return 0


def run_synth_scene(args: argparse.Namespace) -> int:
    from posestream.multiview.synth_scene import SceneConfig, write_scene

    config = SceneConfig(
        cameras=args.cameras,
        animals=args.animals,
        frames=args.num_frames,
        size=args.camera_size,
        seed=args.seed,
        jitter=args.jitter,
        fps=args.fps,
        video=not args.no_video,
    )
    out = write_scene(args.out, config, progress=not args.quiet, calibration=args.calibration)
    files = ["NAME.mp4"] * config.video + ["NAME.analysis.h5"] + ["NAME.detections.h5"] * bool(config.jitter)
    print(
        f"scene: {out} ({config.cameras} cameras, {config.frames} frames, {config.animals} animals, seed "
        f"{config.seed}): {', '.join(files)} per camera, truth3d.h5; calibration: "
        f"{args.calibration or out / 'calibration.toml'}"
    )
    return 0


def run_render(args: argparse.Namespace) -> int:
    from posestream.engine.commands.render import RenderOptions, render

    options = RenderOptions(
        frames=args.frames, trails=args.trails, line_width=args.line_width, progress=not args.quiet
    )
    predictions = args.predictions
    if args.calibration or args.view:
        if not (args.calibration and args.view):
            raise ConfigError("render: drawing 3D poses needs both --calibration and --view NAME")
        from posestream.multiview.reprojection import ProjectedPoses

        predictions = ProjectedPoses(args.predictions, args.calibration, args.view)
    frames = render(args.video, predictions, args.output, options)
    print(f"{frames} frames drawn: {args.output}")
    return 0
