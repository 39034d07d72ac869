"""The same animal's track in every camera: views whose tracks are named differently (each camera tracked on
its own) matched to one reference view by geometry.

For each other camera, every pair of tracks (one from the reference view, one from this view) is triangulated
from the two cameras on a sample of frames; a pair of the same animal reprojects close to its observations,
a pair of two animals does not. Each sampled frame's tracks are paired by optimal assignment on that cost
(the median reprojection error over the nodes both see), and each track takes the reference track it was
paired with most often: one answer for the whole file, so identities stay put over time as long as each
camera's own tracks do. A view whose slots are not identities (untracked) is paired frame by frame instead.

A pair whose cost is above the outlier threshold (``threshold_px``, the triangulation's) is two animals, never
one: each camera saw a different animal there (the live path's ``triangulate_group`` applies the same gate).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from posestream.engine import kernels
from posestream.engine.kernels.constants import UNMATCHED_COST
from posestream.multiview.rig import Rig
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX
from posestream.multiview.views import View

SAMPLED_FRAMES = 2000  # frames whose costs decide the matching (evenly spread over the file)


def match_views(
    rig: Rig,
    views: list[View],
    sampled: int = SAMPLED_FRAMES,
    reference: int | None = None,
    threshold_px: float | None = DEFAULT_THRESHOLD_PX,
) -> list[View]:
    """``views`` with each one's tracks renamed and reordered as the reference view's (``reference``, else
    the tracked view with the most tracks); a track no reference track pairs with is dropped. Pairs that
    reproject further apart than ``threshold_px`` are left apart (None or 0: every pair may join)."""
    if reference is None:
        reference = max(range(len(views)), key=lambda v: (views[v].tracked, len(views[v].track_names)))
    matched = list(views)
    for index, view in enumerate(views):
        if index == reference:
            continue
        pair = rig.select([views[reference].camera, view.camera])
        if view.tracked:
            mapping = track_mapping(pair, views[reference], view, sampled, threshold_px)
            matched[index] = _renamed(view, mapping, views[reference].track_names)
        else:
            matched[index] = _paired_by_frame(pair, views[reference], view, threshold_px)
    return matched


def track_mapping(
    pair: Rig,
    reference: View,
    other: View,
    sampled: int = SAMPLED_FRAMES,
    threshold_px: float | None = DEFAULT_THRESHOLD_PX,
) -> dict[int, int]:
    """{track of ``other``: track of ``reference``} (slot indices), by votes over sampled frames."""
    n_frames = min(reference.points.shape[0], other.points.shape[0])
    frames = np.unique(np.linspace(0, n_frames - 1, min(n_frames, sampled)).astype(int))
    cost = pair_costs(pair, reference.points[frames], other.points[frames])  # (F', Ti, Tj)
    votes = np.zeros(cost.shape[1:])  # (Ti, Tj)
    for frame_cost in cost:
        rows, columns = assign(frame_cost, threshold_px)
        votes[rows, columns] += 1
    rows, columns = linear_sum_assignment(-votes)
    return {int(j): int(i) for i, j in zip(rows, columns) if votes[i, j] > 0}


def _paired_by_frame(
    pair: Rig, reference: View, other: View, threshold_px: float | None, chunk: int = 8192
) -> View:
    """``other``'s instances placed, frame by frame, in the slot of the reference track each pairs with."""
    n_frames = min(reference.points.shape[0], other.points.shape[0])
    names = reference.track_names
    points = np.full((other.points.shape[0], len(names), *other.points.shape[2:]), np.nan)
    scores = np.zeros(points.shape[:3])
    for start in range(0, n_frames, chunk):
        frames = slice(start, min(start + chunk, n_frames))
        for offset, cost in enumerate(pair_costs(pair, reference.points[frames], other.points[frames])):
            rows, columns = assign(cost, threshold_px)
            frame = start + offset
            points[frame, rows] = other.points[frame, columns]
            scores[frame, rows] = other.scores[frame, columns]
    return View(other.camera, other.path, points, scores, list(names), other.skeleton, reference.tracked)


def assign(cost: np.ndarray, threshold_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One frame's pairs (reference tracks, other tracks) by optimal assignment on ``cost`` (Ti, Tj), pairs
    that share no node (NaN) or cost more than ``threshold_px`` (two animals) left out."""
    seen = np.isfinite(cost)
    if threshold_px:  # None or 0: no gate, as the kernel's threshold <= 0
        seen &= np.where(seen, cost, np.inf) <= threshold_px
    if not seen.any():
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows, columns = linear_sum_assignment(np.where(seen, cost, UNMATCHED_COST))
    kept = seen[rows, columns]
    return rows[kept], columns[kept]


def pair_costs(pair: Rig, reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Median reprojection error (F, Ti, Tj) of each pair of tracks, reference (F, Ti, N, 2) and other
    (F, Tj, N, 2), triangulated from the two cameras; NaN where a pair shares no node (the kernel
    ``pair_costs``; a live group's ``triangulate_group`` computes the same cost with the same helper)."""
    reference, other = (np.ascontiguousarray(a, dtype=np.float64) for a in (reference, other))
    out = np.empty((reference.shape[0], reference.shape[1], other.shape[1]))
    kernels.load().pair_costs(reference, other, *pair.arrays, out)
    return out


def _renamed(view: View, mapping: dict[int, int], names: list[str]) -> View:
    """``view`` with its track j in slot ``mapping[j]`` under ``names``; unmapped slots empty."""
    points = np.full((view.points.shape[0], len(names), *view.points.shape[2:]), np.nan)
    scores = np.zeros(points.shape[:3])
    for source, target in mapping.items():
        points[:, target], scores[:, target] = view.points[:, source], view.scores[:, source]
    return View(view.camera, view.path, points, scores, list(names), view.skeleton, view.tracked)
