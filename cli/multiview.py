"""``calibrate`` and ``triangulate``: a rig of cameras calibrated from a board (anipose's calibration.toml),
and their 2D poses joined into 3D."""

from __future__ import annotations

import argparse
import json
import os

from posestream.cli import options as opt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    add_calibrate(sub)
    add_triangulate(sub)


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="calibrate several cameras from a board they film (anipose's calibration.toml)",
        description=(
            "Calibrate the cameras of SESSION_DIR, one folder per camera named after it, with that camera's "
            "board images or videos beneath (sleap-anipose's layout: calibration_images/). The same moment "
            "has the same index in every camera: an image's last number, a video's frame number. The board "
            "is described as anipose describes it (board.toml: ChArUco or checkerboard). Writes anipose's "
            "calibration.toml, and beside it a report (.report.json, .report.png): reprojection error per "
            "camera and the board's corners, triangulated, against their spacing."
        ),
    )
    parser.add_argument("session", metavar="SESSION_DIR")
    parser.add_argument(
        "--board", required=True, metavar="BOARD.toml", help="the board (anipose's board.toml)"
    )
    opt.OUTPUT.add(parser, required=True, metavar="CALIBRATION.toml")
    parser.add_argument(
        "--corners",
        metavar="METADATA.h5",
        help="board corners already detected (sleap-anipose's calibration.metadata.h5: detected_corners, "
        "cameras in the order of SESSION_DIR's folders) instead of detecting them",
    )
    parser.add_argument(
        "--radial-terms",
        type=int,
        default=2,
        choices=(1, 2),
        help="radial distortion terms fitted: 1 (k1, as anipose) or 2 (k1, k2; default)",
    )
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="in videos, look for the board every N frames"
    )
    opt.QUIET.add(parser)
    parser.set_defaults(run=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from posestream.multiview.calibrate_command import calibrate_session

    summary = calibrate_session(
        args.session, args.board, args.output, args.corners, args.radial_terms, args.every, not args.quiet
    )
    for name, f in summary.cameras.items():
        print(
            f"{name}: {f['frames']} frames, reprojection error median {f['reprojection_median_px']:.2f} px "
            f"(p90 {f['reprojection_p90_px']:.2f}), focal length {f['focal_px']:.1f} px"
        )
    spacing = summary.board_spacing
    print(
        f"board: {spacing['pairs']} adjacent corners triangulated, |distance - {spacing['square_length']:g}| "
        f"median {spacing['median_abs_error']:.3f}, p90 {spacing['p90_abs_error']:.3f}"
    )
    print(f"calibration: {summary.output}; report: {summary.report_json}, {summary.report_png}")
    return 0


def add_triangulate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "triangulate",
        help="join several calibrated cameras' 2D poses into 3D poses",
        description=(
            "Triangulate one 2D predictions file per camera (analysis .h5 or .slp, as track and batch write "
            "them), each given as NAME=FILE with NAME the camera's name in the calibration (anipose's "
            "calibration.toml). Writes a 3D HDF5 file: points3d (frames, tracks, nodes, 3) in the "
            "calibration's units, laid out as sleap-anipose's, with each point's reprojection error and "
            "cameras used. With several animals, each view's tracks are matched to the view with the most "
            "tracks by geometry (each camera's tracker names its own tracks)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="NAME=FILE", help="each camera's 2D poses")
    opt.RIG_CALIBRATION.add(parser, required=True)
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
    parser.add_argument(
        "--smooth",
        type=int,
        default=0,
        metavar="N",
        help="then smooth each point over time: the median of N frames (odd), named in the file "
        "(default: none)",
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw each track's 3D path and skeleton (posestream[calibration])",
    )
    parser.add_argument(
        "--solve-threads",
        type=int,
        default=0,
        metavar="N",
        help="threads solving points (default: one per core)",
    )
    opt.JSON.add(parser)
    parser.set_defaults(run=run_triangulate)


def run_triangulate(args: argparse.Namespace) -> int:
    from posestream.multiview.triangulate_command import parse_inputs, triangulate_files

    summary = triangulate_files(
        args.calibration,
        parse_inputs(args.inputs),
        args.output,
        args.threshold or None,
        args.min_cameras,
        args.solve_threads or os.cpu_count() or 1,
        args.smooth,
    )
    cameras = ", ".join(f"{name} {px:.2f}" for name, px in summary.reprojection_median.items())
    print(
        f"triangulated {summary.frames} frames x {summary.tracks} tracks: {summary.solved} points, "
        f"{summary.unsolved} seen by fewer than {args.min_cameras} cameras (NaN); reprojection error median "
        f"(px): {cameras}; {summary.fps:.0f} frames/s -> {summary.output}"
        + ("; tracks matched across views by geometry" if summary.matched else "")
        + (f"; smoothed: median over {args.smooth} frames" if args.smooth else "")
    )
    if args.plot:
        from posestream.multiview.plot import plot_trajectories
        from posestream.multiview.points3d_file import read_points3d

        print(f"picture: {plot_trajectories(read_points3d(summary.output), args.plot)}")
    if args.json:
        record = {**summary.__dict__, "output": str(summary.output), "fps": summary.fps}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
    return 0
