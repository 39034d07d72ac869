"""A group of live frames (one per camera, taken at one moment) joined into 3D poses.

Each camera's instances are paired with the reference camera's by geometry (``matching``: every pair of
instances triangulated from its two cameras, then optimal assignment; live trackers name identities per
camera, so names are never trusted; a pair that reprojects further apart than ``threshold_px``, the outlier
threshold, is two animals and is left apart), then triangulated. The reference is the first camera of the
calibration that is in the group, so the 3D poses carry its track ids: with the same cameras, the same
identities from group to group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from posestream.engine import kernels
from posestream.engine.types import FramePredictions, Skeleton
from posestream.multiview.live_groups import FrameGroup
from posestream.multiview.rig import Rig
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX


@dataclass
class Poses3D:
    """One moment's 3D poses."""

    points: np.ndarray  # (T, N, 3) world units, NaN where unsolved
    track_ids: np.ndarray  # (T,) the reference camera's track ids (-1: untracked)
    cameras_used: np.ndarray  # (T, N) cameras each point was solved from
    reprojection_error: np.ndarray  # (T, N, C) pixels, C: every camera of the rig; NaN where not seen
    cameras: list[str]  # the cameras in the group, calibration order
    reference: str
    capture_ns: int
    solve_ns: int  # how long this step took


class GroupTriangulator:
    """Groups of ``FramePredictions`` (by camera name) to ``Poses3D``."""

    def __init__(self, rig: Rig, skeleton: Skeleton, threshold_px: float | None = DEFAULT_THRESHOLD_PX):
        self.rig, self.skeleton, self.threshold_px = rig, skeleton, threshold_px

    def __call__(self, group: FrameGroup) -> Poses3D:
        started = time.perf_counter_ns()
        cameras = [c for c in self.rig.names if c in group.frames and len(group.frames[c].points)]
        ids = np.asarray(group.frames[cameras[0]].track_ids, np.int64) if cameras else np.empty(0, np.int64)
        shape = (len(ids), self.skeleton.n_nodes)
        points, used = np.full((*shape, 3), np.nan), np.zeros(shape, np.uint8)
        errors = np.full((*shape, len(self.rig.cameras)), np.nan)
        if len(cameras) >= 2:  # fewer: no camera pair saw an animal, nothing to join
            points, seen_by, seen_errors = self._solve(cameras, [group.frames[c] for c in cameras])
            used = seen_by.sum(axis=0, dtype=np.uint8)
            errors[..., [self.rig.names.index(c) for c in cameras]] = np.moveaxis(seen_errors, 0, -1)
        solve_ns = time.perf_counter_ns() - started
        reference = cameras[0] if cameras else ""
        return Poses3D(points, ids, used, errors, cameras, reference, group.capture_ns, solve_ns)

    def _solve(self, cameras: list[str], frames: list[FramePredictions]) -> tuple[np.ndarray, ...]:
        """The first camera's instances, each joined with the instance of every other camera it pairs with,
        in one kernel call (engine/kernels/triangulation.py ``triangulate_group``): points (T, N, 3), the
        observations used (C, T, N) and their reprojection errors (C, T, N)."""
        counts = np.array([len(f.points) for f in frames], np.int64)
        shape = (len(frames), int(counts.max()), self.skeleton.n_nodes)
        pixels, scores = np.full((*shape, 2), np.nan), np.zeros(shape)
        for c, frame in enumerate(frames):
            pixels[c, : counts[c]], scores[c, : counts[c]] = frame.points, frame.point_scores
        points = np.empty((shape[1], shape[2], 3))
        used, errors = np.empty(shape, np.uint8), np.empty(shape)
        settings = (float(self.threshold_px or 0.0), 2)
        arrays = self.rig.select(cameras).arrays
        kernels.load().triangulate_group(
            pixels, scores, counts, *arrays, *settings, points, used, errors, np.empty(shape[:2], np.int64)
        )
        return points[: counts[0]], used[:, : counts[0]], errors[:, : counts[0]]
