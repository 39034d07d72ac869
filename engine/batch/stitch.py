"""Parts of a video merged into its one output, their identities stitched.

Part k and part k-1 both ran the frames ``[part_k.warm, part_k.start)``: the same model on the same frames
gives the same poses, so each instance there is found in both, and the identity part k gave it votes for
the identity part k-1 gave it. A gated Hungarian assignment of those votes maps part k's identities onto
part k-1's (already mapped) ones; an identity with no vote takes an identity free at that point when the
number of animals is known (``max_tracks``), else a new one.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np

from posestream.engine.batch.split import Part
from posestream.engine.sinks import AnalysisH5Reader, close_sinks, open_sinks
from posestream.engine.sources import open_source
from posestream.engine.tracking.matching import best_assignment
from posestream.engine.types import UNTRACKED, FramePredictions

SAME_POSE_PX = 0.5  # mean node distance under which two instances of one frame are the same detection


def _timestamps(video: str) -> np.ndarray:
    """The video's frame times in seconds (for NWB output).  # (n_frames,)"""
    with open_source(video) as source:
        return source.timestamps()


def merge_parts(
    parts: list[tuple[Part, Path]],
    outputs: dict[str, Path],
    video: str,
    tracked: bool,
    max_tracks: int | None,
) -> int:
    """Write the parts' frames ``[start, stop)`` in order into ``outputs`` (format -> path); returns
    frames."""
    first = AnalysisH5Reader(parts[0][1])
    skeleton, provenance = (
        first.skeleton,
        {**first.provenance, "frames": "all", "parts": [p.frames for p, _ in parts]},
    )
    first.close()
    sinks = open_sinks(outputs, skeleton, video, provenance, tracked, timestamps=lambda: _timestamps(video))
    written, used_ids, tail = 0, set(), collections.deque()
    try:
        for part, path in parts:
            with AnalysisH5Reader(path) as reader:
                frames = reader.iter_frames()
                overlap = [next(frames) for _ in range(part.start - part.warm)]
                mapping = (
                    identity_mapping(tail, overlap, used_ids, max_tracks) if tracked and part.index else {}
                )
                tail = collections.deque(maxlen=max(1, part.stop - part.start))
                for frame in frames:
                    frame = _relabelled(frame, mapping)
                    used_ids.update(int(t) for t in frame.track_ids if t != UNTRACKED)
                    for sink in sinks:
                        sink.write(frame)
                    tail.append(frame)
                    written += 1
    finally:
        close_sinks(sinks)
    return written


def identity_mapping(
    before: collections.deque, overlap: list[FramePredictions], used: set[int], max_tracks: int | None
) -> dict[int, int]:
    """Part k's identity -> the merged identity (see the module docstring)."""
    previous = {f.frame_idx: f for f in before}
    votes: collections.Counter[tuple[int, int]] = collections.Counter()
    mine: set[int] = set()
    for frame in overlap:
        mine.update(int(t) for t in frame.track_ids if t != UNTRACKED)
        other = previous.get(frame.frame_idx)
        if other is not None:
            for a, b in same_instances(frame, other):
                if frame.track_ids[a] != UNTRACKED and other.track_ids[b] != UNTRACKED:
                    votes[int(frame.track_ids[a]), int(other.track_ids[b])] += 1
    mapping = _assign(votes)
    free = sorted(set(range(max_tracks)) - set(mapping.values())) if max_tracks else []
    next_id = max(used, default=-1) + 1
    for track in sorted(mine - mapping.keys()):
        if free:
            mapping[track] = free.pop(0)
        else:
            mapping[track], next_id = next_id, next_id + 1
    return mapping


def same_instances(a: FramePredictions, b: FramePredictions) -> list[tuple[int, int]]:
    """Pairs (i, j): instance i of ``a`` and j of ``b`` are the same detection (their poses agree)."""
    if not a.n_instances or not b.n_instances:
        return []
    # (Na, Nb, nodes), NaN: a node missing
    per_node = np.linalg.norm(a.points[:, None] - b.points[None], axis=-1)
    found = (~np.isnan(per_node)).sum(axis=-1)
    distance = np.where(found > 0, np.nansum(per_node, axis=-1) / np.maximum(found, 1), np.inf)  # (Na, Nb)
    rows, cols = best_assignment(-np.minimum(distance, 1e9))  # the least total distance
    return [(int(i), int(j)) for i, j in zip(rows, cols) if distance[i, j] < SAME_POSE_PX]


def _assign(votes: collections.Counter) -> dict[int, int]:
    """The one-to-one mapping with the most votes (pairs without a vote are never made)."""
    if not votes:
        return {}
    mine = sorted({a for a, _ in votes})
    theirs = sorted({b for _, b in votes})
    matrix = np.array([[votes.get((a, b), 0) for b in theirs] for a in mine], float)
    rows, cols = best_assignment(matrix)
    return {mine[i]: theirs[j] for i, j in zip(rows, cols) if matrix[i, j] > 0}


def _relabelled(frame: FramePredictions, mapping: dict[int, int]) -> FramePredictions:
    if mapping:
        frame.track_ids = np.array(
            [mapping.get(int(t), int(t)) if t != UNTRACKED else UNTRACKED for t in frame.track_ids], np.int32
        )
    return frame


def remove_parts(parts: list[tuple[Part, Path]]) -> None:
    for _, path in parts:
        if os.path.exists(path):
            os.remove(path)
