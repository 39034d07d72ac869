"""Points seen by several calibrated cameras, joined in 3D.

The 3D point of each set of observations is the score-weighted linear (DLT) solution on undistorted
coordinates. Outliers are rejected by reprojection: while a point's worst camera reprojects more than
``threshold_px`` off and more than ``min_cameras`` cameras remain, that camera is left out and the point
solved again. A point seen by fewer than ``min_cameras`` cameras is NaN, and counted.

The loop is the engine's compiled kernel (engine/kernels/triangulation.py), one pass per point.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine import kernels
from posestream.multiview.rig import Rig

DEFAULT_THRESHOLD_PX = 20.0
CHUNK = 262_144  # points per kernel call: the unit of parallel work


@dataclass
class Triangulation:
    """3D points and how they were made. ``...`` is the input's point shape (e.g. frames, tracks, nodes)."""

    points: np.ndarray  # (..., 3) world units; NaN where fewer than min_cameras saw the point
    reprojection_error: np.ndarray  # (C, ...) pixels: each observation against the 3D point's projection
    used: np.ndarray  # (C, ...) bool: the observations the point was solved from (outliers left out)
    cameras_seen: np.ndarray  # (...) int: cameras with an observation of the point

    @property
    def cameras_used(self) -> np.ndarray:
        """(...) int: cameras each point was solved from (0 where it is NaN)."""
        return self.used.sum(axis=0)

    @property
    def unsolved(self) -> int:
        """Points observed by some camera but without a 3D position (too few cameras, or degenerate)."""
        return int(((self.cameras_seen > 0) & (self.cameras_used == 0)).sum())


def triangulate(
    rig: Rig,
    pixels: np.ndarray,
    scores: np.ndarray | None = None,
    threshold_px: float | None = DEFAULT_THRESHOLD_PX,
    min_cameras: int = 2,
    threads: int = 1,
) -> Triangulation:
    """Join ``pixels`` (C, ..., 2), camera c's observations in ``rig.cameras[c]``, into 3D points.

    ``scores`` (C, ...) weigh each observation (NaN or <= 0: unused); None weighs all alike. NaN pixels are
    unseen. ``threshold_px`` None keeps every camera. ``threads`` > 1 solves chunks of points in parallel.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    n_cameras = len(rig.cameras)
    if pixels.ndim < 2 or pixels.shape[0] != n_cameras or pixels.shape[-1] != 2:
        raise ValueError(f"pixels must be ({n_cameras}, ..., 2) for {n_cameras} cameras, got {pixels.shape}")
    if not 2 <= min_cameras <= n_cameras:
        raise ConfigError(
            f"--min-cameras {min_cameras}: a point needs at least 2 cameras, and there are {n_cameras}"
        )
    shape = pixels.shape[1:-1]
    flat = np.ascontiguousarray(pixels.reshape(n_cameras, -1, 2))
    weights = observation_weights(flat, scores)
    points = np.empty((flat.shape[1], 3))
    used = np.empty((n_cameras, flat.shape[1]), dtype=np.uint8)
    errors = np.empty((n_cameras, flat.shape[1]))
    cameras = rig.arrays
    settings = (float(threshold_px or 0.0), int(min_cameras))

    def solve(part: slice) -> None:
        out = (points[part], np.ascontiguousarray(used[:, part]), np.ascontiguousarray(errors[:, part]))
        observed = np.ascontiguousarray(flat[:, part]), np.ascontiguousarray(weights[:, part])
        kernels.load().triangulate_points(*observed, *cameras, *settings, *out)
        used[:, part], errors[:, part] = out[1], out[2]

    parts = [slice(start, start + CHUNK) for start in range(0, flat.shape[1], CHUNK)]
    if len(parts) == 1 or threads <= 1:
        for part in parts:
            solve(part)
    else:  # the kernel releases the GIL: chunks run in parallel
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(solve, parts))
    seen = (weights > 0).sum(axis=0)
    return Triangulation(
        points.reshape(*shape, 3),
        errors.reshape(n_cameras, *shape),
        used.astype(bool).reshape(n_cameras, *shape),
        seen.reshape(shape),
    )


def observation_weights(pixels: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """(C, P) weights of observations (C, P, 2): the score, 0 where unseen or the score is NaN or <= 0."""
    seen = np.isfinite(pixels).all(axis=-1)
    if scores is None:
        return seen.astype(np.float64)
    weights = np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(seen.shape), nan=0.0)
    return np.ascontiguousarray(np.where(seen & (weights > 0), weights, 0.0))
