"""A calibration session laid out as sleap-anipose lays one out, read into board corners per camera.

SESSION_DIR holds one folder per camera, named after it, with that camera's board images or videos anywhere
beneath (a ``calibration_images`` folder, when there is one, is where they are looked for). The same moment
has the same index in every camera: an image's index is the last number in its name
(``back-02242022135219-7.jpg`` is 7), a video's is its frame number. Where a camera has images, its videos
are not read.

Or the corners come ready-made: sleap-anipose's ``calibration.metadata.h5`` (``detected_corners``, cameras x
frames x corners x 2, in the calibration's camera order).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.progress import progress_bar
from posestream.multiview.board import Board, CornerDetector

IMAGES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEOS = (".mp4", ".avi", ".mov", ".mkv")


@dataclass
class SessionCorners:
    """Board corners seen by each camera, on one frame axis."""

    names: list[str]
    sizes: list[tuple[int, int]]  # (width, height) per camera
    corners: np.ndarray  # (C, F, K, 2), NaN where a corner was not found


def camera_folders(session: Path) -> dict[str, Path]:
    """The session's camera folders by name (its subfolders that hold images or videos)."""
    if not session.is_dir():
        raise FileNotFoundError(f"{session}: no such session folder (one folder per camera)")
    folders = {d.name: d for d in sorted(session.iterdir()) if d.is_dir() and any(media(d, IMAGES + VIDEOS))}
    if len(folders) < 2:
        raise ConfigError(
            f"{session}: found {len(folders)} camera folders with board images or videos ({list(folders)}); "
            "a session needs one folder per camera, at least 2"
        )
    return folders


def read_session(session: str | Path, board: Board, every: int = 1, progress: bool = True) -> SessionCorners:
    """Detect the board in every camera's images (or every ``every``-th frame of its videos)."""
    folders = camera_folders(Path(session))
    detect = CornerDetector(board)
    found, sizes = [], []
    for name, folder in folders.items():
        corners, size = _camera_corners(name, folder, detect, every, progress)
        found.append(corners)
        sizes.append(size)
    n_frames = max(max(c, default=-1) for c in found) + 1
    stacked = np.full((len(found), n_frames, board.n_corners, 2), np.nan)
    for c, corners in enumerate(found):
        for index, points in corners.items():
            stacked[c, index] = points
    return SessionCorners(list(folders), sizes, stacked)


def read_corners_h5(path: str | Path, names: list[str], sizes: list[tuple[int, int]]) -> SessionCorners:
    """sleap-anipose's detected corners (``detected_corners``: C x F x K x 2), cameras named ``names``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such corners file (sleap-anipose's calibration.metadata.h5)")
    with h5py.File(path, "r") as f:
        if "detected_corners" not in f:
            raise ConfigError(f"{path}: no detected_corners dataset (cameras x frames x corners x 2)")
        corners = f["detected_corners"][:].astype(np.float64)
    if corners.ndim != 4 or corners.shape[0] != len(names):
        raise ConfigError(
            f"{path}: detected_corners is {corners.shape}, expected {len(names)} cameras ({names}) x "
            "frames x corners x 2"
        )
    return SessionCorners(list(names), list(sizes), corners)


def media(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files beneath ``folder`` with these suffixes (from its ``calibration_images`` folder, if any)."""
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes]
    chosen = [p for p in found if "calibration_images" in p.parts]
    return sorted(chosen or found)


def _camera_corners(
    name: str, folder: Path, detect: Callable, every: int, progress: bool
) -> tuple[dict[int, np.ndarray], tuple[int, int]]:
    """{frame index: corners (K, 2)} of one camera, and its image size."""
    images = media(folder, IMAGES)
    if images:
        return _image_corners(name, images, detect, progress)
    return _video_corners(name, media(folder, VIDEOS), detect, every, progress)


def _image_corners(name, images, detect, progress):
    cv2 = detect.cv2
    corners, size = {}, None
    with progress_bar(len(images), f"board in {name}'s images", enabled=progress) as advance:
        for path in images:
            numbers = re.findall(r"\d+", path.stem)
            if not numbers:
                raise ConfigError(f"{path}: an image's name must end in its frame index (e.g. {name}-7.jpg)")
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise ConfigError(f"{path}: not a readable image")
            size = (gray.shape[1], gray.shape[0])
            corners[int(numbers[-1])] = detect(gray)
            advance()
    return corners, size


def _video_corners(name, videos, detect, every, progress):
    from posestream.engine.sources import open_source

    corners, size, offset = {}, None, 0
    for path in videos:  # one after another on the camera's frame axis
        last = -1
        with open_source(str(path), color="gray") as source:
            meta = source.metadata
            size = (meta.width, meta.height)
            with progress_bar(meta.n_frames, f"board in {path.name}", enabled=progress) as advance:
                for frame_idx, image in source.iter_frames():
                    if frame_idx % every == 0:
                        corners[offset + frame_idx] = detect(np.ascontiguousarray(image[..., 0]))
                    last = frame_idx
                    advance()
        offset += last + 1
    return corners, size
