"""Long videos in parts (``--split-frames F``), and interrupted videos continued where they stopped.

A part writes the frames ``[start, stop)`` of its video into its own file; the parts are then merged into
the video's one output (``stitch.merge_parts``). Parts start at keyframes, so no part decodes frames
another part owns. With tracking, each part after the first also runs the ``overlap`` frames before its
start (about ``OVERLAP_SECONDS`` of video): its tracker is warm at ``start``, and the identities of the two
parts are matched on those frames.
"""

from __future__ import annotations

from dataclasses import dataclass

OVERLAP_SECONDS = 2.0
MIN_OVERLAP = 30  # frames, at low frame rates


@dataclass(frozen=True)
class Part:
    """Frames ``[start, stop)`` of a video, run from ``warm`` (< start with tracking: the overlap)."""

    index: int
    start: int
    stop: int
    warm: int

    @property
    def frames(self) -> str:
        """The frames it runs, as a --frames selection."""
        return f"{self.warm}-{self.stop - 1}"


def split_ranges(n_frames: int, keyframes: list[int], every: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at least ``every`` frames (the last may be shorter), each starting at a
    keyframe; one range when the video has no keyframe far enough in."""
    cuts = [0]
    for key in sorted(keyframes):
        if key - cuts[-1] >= every and n_frames - key > 0:
            cuts.append(int(key))
    return list(zip(cuts, [*cuts[1:], n_frames]))


def overlap_frames(fps: float) -> int:
    return max(MIN_OVERLAP, round(OVERLAP_SECONDS * fps)) if fps > 0 else MIN_OVERLAP


def make_parts(ranges: list[tuple[int, int]], overlap: int) -> tuple[Part, ...]:
    """One part per range; each after the first runs ``overlap`` frames before its start (0: no tracking)."""
    return tuple(
        Part(i, start, stop, max(0, start - overlap) if i else start)
        for i, (start, stop) in enumerate(ranges)
    )
