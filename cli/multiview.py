"""``triangulate``: several calibrated cameras' 2D poses joined into 3D (anipose's calibration.toml)."""

from __future__ import annotations

import argparse
import json

from posestream.cli import options as opt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "triangulate",
        help="join several calibrated cameras' 2D poses into 3D poses",
        description=(
            "Triangulate one 2D predictions file per camera (analysis .h5 or .slp, as track and batch write "
            "them), each given as NAME=FILE with NAME the camera's name in the calibration (anipose's "
            "calibration.toml). Writes a 3D HDF5 file: points3d (frames, tracks, nodes, 3) in the "
            "calibration's units, laid out as sleap-anipose's, with each point's reprojection error and "
            "cameras used. Tracks are joined by name across views."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="NAME=FILE", help="each camera's 2D poses")
    parser.add_argument(
        "--calibration", required=True, metavar="CALIBRATION.toml", help="the rig's calibration"
    )
    opt.OUTPUT.add(parser, required=True, metavar="POINTS3D.h5")
    parser.add_argument(
        "--threshold",
        type=float,
        default=20.0,
        metavar="PX",
        help="leave out a point's worst camera while it reprojects more than PX pixels off and more than "
        "--min-cameras remain (default 20; 0: keep every camera)",
    )
    parser.add_argument(
        "--min-cameras", type=int, default=2, metavar="N", help="cameras a 3D point needs (default 2)"
    )
    opt.JSON.add(parser)
    parser.set_defaults(run=run_triangulate)


def run_triangulate(args: argparse.Namespace) -> int:
    from posestream.multiview.archive import parse_inputs, triangulate_files

    summary = triangulate_files(
        args.calibration, parse_inputs(args.inputs), args.output, args.threshold or None, args.min_cameras
    )
    cameras = ", ".join(f"{name} {px:.2f}" for name, px in summary.reprojection_median.items())
    print(
        f"triangulated {summary.frames} frames x {summary.tracks} tracks: {summary.solved} points, "
        f"{summary.unsolved} seen by fewer than {args.min_cameras} cameras (NaN); reprojection error median "
        f"(px): {cameras}; {summary.fps:.0f} frames/s -> {summary.output}"
    )
    if args.json:
        record = {**summary.__dict__, "output": str(summary.output), "fps": summary.fps}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
    return 0
