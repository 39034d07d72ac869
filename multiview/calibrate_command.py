"""``posestream calibrate``: a session's board views into anipose's calibration.toml, with a report.

Beside the calibration it writes CALIBRATION.report.json (per camera: frames used, reprojection error median
and p90, focal length and distortion; and the board's adjacent corners, triangulated, against their true
spacing) and CALIBRATION.report.png (each camera's detected corners against their reprojection, and the rig
seen from above).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.extras import require
from posestream.multiview.board import Board, read_board
from posestream.multiview.calibrate import CalibrationReport, calibrate
from posestream.multiview.calibration_file import write_calibration
from posestream.multiview.camera import rodrigues
from posestream.multiview.rig import Rig
from posestream.multiview.session import (
    IMAGES,
    VIDEOS,
    SessionCorners,
    camera_folders,
    media,
    read_corners_h5,
    read_session,
)
from posestream.multiview.triangulate import triangulate


@dataclass
class CalibrateSummary:
    output: Path
    report_json: Path
    report_png: Path | None
    cameras: dict  # name -> {frames, reprojection_median_px, reprojection_p90_px, focal_px, distortions}
    board_spacing: dict  # the board's adjacent corners triangulated: |distance - square_length|


def calibrate_session(
    session: str | Path,
    board_path: str | Path,
    output: str | Path,
    corners_h5: str | Path | None = None,
    radial_terms: int = 2,
    every: int = 1,
    progress: bool = True,
) -> CalibrateSummary:
    """Calibrate the cameras of ``session`` (one folder per camera) from the board in ``board_path``."""
    if radial_terms not in (1, 2):
        raise ConfigError(f"--radial-terms {radial_terms}: use 1 (k1, as anipose) or 2 (k1, k2)")
    if every < 1:
        raise ConfigError(f"--every {every}: look for the board every N >= 1 frames")
    board = read_board(board_path)
    seen = _corners(Path(session), board, corners_h5, every, progress)
    rig, report = calibrate(seen.corners, board, seen.names, seen.sizes, radial_terms)
    output = write_calibration(rig, output)
    cameras = _camera_figures(rig, report)
    spacing = board_spacing(rig, seen.corners, board)
    report_json = output.with_suffix(".report.json")
    report_json.write_text(json.dumps({"cameras": cameras, "board_spacing": spacing}, indent=2))
    png = _plot(rig, report, seen, board, output.with_suffix(".report.png"))
    return CalibrateSummary(output, report_json, png, cameras, spacing)


def _corners(session: Path, board: Board, corners_h5, every: int, progress: bool) -> SessionCorners:
    if corners_h5 is None:
        return read_session(session, board, every, progress)
    folders = camera_folders(session)
    return read_corners_h5(corners_h5, list(folders), [_frame_size(f) for f in folders.values()])


def _frame_size(folder: Path) -> tuple[int, int]:
    """A camera's frame size from the first of its board images or videos."""
    images = media(folder, IMAGES)
    if images:
        cv2 = require("cv2", extra="calibration", feature="reading board images")
        image = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ConfigError(f"{images[0]}: not a readable image")
        return image.shape[1], image.shape[0]
    from posestream.engine.sources import open_source

    with open_source(str(media(folder, VIDEOS)[0])) as source:
        return source.metadata.width, source.metadata.height


def board_spacing(rig: Rig, corners: np.ndarray, board: Board) -> dict:
    """The board's corners (C, F, K, 2) triangulated: how far adjacent ones lie from ``square_length``."""
    points = triangulate(rig, corners, threshold_px=None).points  # (F, K, 3)
    pairs = board.adjacent_pairs()
    distance = np.linalg.norm(points[:, pairs[:, 0]] - points[:, pairs[:, 1]], axis=-1)
    error = np.abs(distance - board.square_length)
    error = error[np.isfinite(error)]
    if not error.size:
        return {"pairs": 0, "square_length": board.square_length, "median_abs_error": float("nan"),
                "p90_abs_error": float("nan")}  # fmt: skip
    return {
        "pairs": int(error.size),
        "square_length": board.square_length,
        "median_abs_error": float(np.median(error)),
        "p90_abs_error": float(np.percentile(error, 90)),
    }


def _camera_figures(rig: Rig, report: CalibrationReport) -> dict:
    figures = {}
    for camera, frames, errors in zip(rig.cameras, report.frames_used, report.reprojection):
        finite = errors[np.isfinite(errors)]
        figures[camera.name] = {
            "frames": int(frames),
            "reprojection_median_px": float(np.median(finite)),
            "reprojection_p90_px": float(np.percentile(finite, 90)),
            "focal_px": float(camera.matrix[0, 0]),
            "distortions": camera.distortions.tolist(),
        }
    return figures


def _plot(rig: Rig, report: CalibrationReport, seen: SessionCorners, board: Board, out: Path) -> Path | None:
    """Each camera's detected corners against their reprojection, and the rig from above."""
    matplotlib = require("matplotlib", extra="calibration", feature="the calibration report's picture")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(rig.cameras)
    fig, axes = plt.subplots(1, n + 1, figsize=(4 * (n + 1), 4))
    for ax, camera, corners, errors in zip(axes, rig.cameras, seen.corners, report.reprojection):
        found = np.isfinite(errors)
        ax.scatter(*corners[found].T, c=errors[found], s=4, cmap="viridis", vmin=0, vmax=3)
        ax.set(xlim=(0, camera.size[0]), ylim=(camera.size[1], 0), aspect="equal")
        ax.set_title(f"{camera.name}: median {np.median(errors[found]):.2f} px", fontsize=9)
    _plot_rig(axes[-1], rig, triangulate(rig, seen.corners, threshold_px=None).points.reshape(-1, 3), board)
    fig.suptitle("detected corners, coloured by reprojection error (px, 0-3)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _plot_rig(ax, rig: Rig, points: np.ndarray, board: Board) -> None:
    """Camera centres, their viewing directions and the board corners (N, 3), seen along the axis in which
    they spread least (from above, for cameras around an arena)."""
    centers = np.stack([c.center for c in rig.cameras])
    ends = centers + np.stack([rodrigues(c.rotation)[2] for c in rig.cameras]) * board.square_length * 4
    cloud = np.concatenate([centers, points[np.isfinite(points).all(axis=1)]])
    _, _, axes = np.linalg.svd(cloud - cloud.mean(axis=0), full_matrices=False)

    def flat(xyz: np.ndarray) -> np.ndarray:
        return (xyz - cloud.mean(axis=0)) @ axes[:2].T

    ax.scatter(*flat(cloud[len(centers) :]).T, s=1, color="tab:gray")
    for camera, center, end in zip(rig.cameras, flat(centers), flat(ends)):
        ax.plot([center[0], end[0]], [center[1], end[1]], color="tab:red")
        ax.scatter(*center, marker="o", color="tab:red")
        ax.annotate(camera.name, center, fontsize=8)
    ax.set(aspect="equal", title="the rig (board corners grey)")
