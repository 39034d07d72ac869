"""A group of live frames (one per camera, taken at one moment) joined into 3D poses.

Each camera's instances are paired with the reference camera's by geometry (``matching``, frame by frame:
live trackers name identities per camera), then triangulated. The reference is the first camera of the
calibration that is in the group, so the 3D poses carry its track ids: with the same cameras, the same
identities from group to group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from posestream.engine.types import FramePredictions, Skeleton
from posestream.multiview.live_groups import FrameGroup
from posestream.multiview.matching import match_views
from posestream.multiview.rig import Rig
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX, triangulate
from posestream.multiview.views import View, join_views


@dataclass
class Poses3D:
    """One moment's 3D poses."""

    points: np.ndarray  # (T, N, 3) world units, NaN where unsolved
    track_ids: np.ndarray  # (T,) the reference camera's track ids (-1: untracked)
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
        points = np.full((len(ids), self.skeleton.n_nodes, 3), np.nan)
        if len(cameras) >= 2:  # fewer: no camera pair saw an animal, nothing to join
            points = self._solve(cameras, [group.frames[c] for c in cameras])
        solve_ns = time.perf_counter_ns() - started
        return Poses3D(points, ids, cameras, cameras[0] if cameras else "", group.capture_ns, solve_ns)

    def _solve(self, cameras: list[str], frames: list[FramePredictions]) -> np.ndarray:
        """(T, N, 3): the first camera's instances, each joined with the others' it pairs with."""
        views = [View(c, None, f.points[None].astype(np.float64), f.point_scores[None].astype(np.float64),
                      _names(f), self.skeleton, tracked=i == 0)
                 for i, (c, f) in enumerate(zip(cameras, frames))]  # fmt: skip
        rig = self.rig.select(cameras)
        joined = join_views(match_views(rig, views, reference=0))
        return triangulate(rig, joined.pixels, joined.scores, self.threshold_px).points[0]


def _names(frame: FramePredictions) -> list[str]:
    """Each instance's name in matching: its track id, or its place in the frame where it has none."""
    return [f"track {t}" if t >= 0 else f"instance {k}" for k, t in enumerate(np.asarray(frame.track_ids))]
