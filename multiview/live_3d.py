"""A group of live frames (one per camera, taken at one moment) joined into 3D poses.

Each camera's instances are paired with the reference camera's by geometry (``matching``: every pair of
instances triangulated from its two cameras, then optimal assignment; live trackers name identities per
camera, so names are never trusted), then triangulated. The reference is the first camera of the
calibration that is in the group, so the 3D poses carry its track ids: with the same cameras, the same
identities from group to group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from posestream.engine.types import FramePredictions, Skeleton
from posestream.multiview.live_groups import FrameGroup
from posestream.multiview.matching import assign, view_pair_costs
from posestream.multiview.rig import Rig
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX, Triangulation, triangulate


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
            solved = self._solve(cameras, [group.frames[c] for c in cameras])
            points, used = solved.points[0], solved.cameras_used[0]
            errors[..., [self.rig.names.index(c) for c in cameras]] = np.moveaxis(
                solved.reprojection_error[:, 0], 0, -1
            )
        solve_ns = time.perf_counter_ns() - started
        reference = cameras[0] if cameras else ""
        return Poses3D(points, ids, used, errors, cameras, reference, group.capture_ns, solve_ns)

    def _solve(self, cameras: list[str], frames: list[FramePredictions]) -> Triangulation:
        """One moment's points (1, T, N, 3): the first camera's instances, each joined with the instance of
        every other camera it pairs with (one animal in every view: no pairing needed)."""
        rig, reference = self.rig.select(cameras), frames[0]
        shape = (len(frames), len(reference.points), self.skeleton.n_nodes)
        pixels, scores = np.full((*shape, 2), np.nan), np.zeros(shape)
        pixels[0], scores[0] = reference.points, reference.point_scores
        if all(len(f.points) == 1 for f in frames):
            pairs = [(np.zeros(1, int), np.zeros(1, int))] * (len(frames) - 1)
        else:
            views = [np.asarray(f.points[None], np.float64) for f in frames]  # (1, T, N, 2) each
            pairs = [assign(cost[0]) for cost in view_pair_costs(rig, views[0], views[1:])]
        for c, (frame, (rows, columns)) in enumerate(zip(frames[1:], pairs), start=1):
            pixels[c, rows], scores[c, rows] = frame.points[columns], frame.point_scores[columns]
        return triangulate(rig, pixels[:, None], scores[:, None], self.threshold_px)
