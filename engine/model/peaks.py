"""Peaks of confidence maps: top-K local maxima per channel, then subpixel refinement.

Two steps, so that both export output modes meet in the middle:

1. candidates: for every channel, the K highest cells that are the maximum of
   their 3x3 neighbourhood, with that neighbourhood (``find_candidates``, a compiled
   kernel, see ``posestream.engine.kernels``, for ``maps`` models; the same computation inside the graph for
   ``peaks`` models, see ``posestream.train.graph``);
2. refinement: a parabola through each candidate and its two neighbours per
   axis (offset clamped to half a cell, none at the map border), and a
   threshold on the candidate's value (``refine_candidates``).

Grid convention (shared with training targets): cell (row i, column j) of a
map at stride ``s`` is input pixel (x = j * s, y = i * s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestream.engine import kernels

NOT_A_PEAK = -1e4
INTEGRAL_WINDOW = 5  # cells on a side of the window "integral" refinement averages over
"""Value given to cells that are not local maxima, so top-K ranks them last (fits in fp16)."""


@dataclass(frozen=True)
class PeakCandidates:
    """The K best local maxima of each channel of a batch of maps, before refinement.

    values: (B, C, K) map value at each candidate; NOT_A_PEAK (or any value below
      the peak threshold) where a channel has fewer than K maxima.
    rows, cols: (B, C, K) int cell of each candidate.
    patches: (B, C, K, 3, 3) the map around each candidate (zeros past the border).
    map_shape: (height, width) of the maps; stride: input pixels per cell.
    """

    values: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    patches: np.ndarray
    map_shape: tuple[int, int]
    stride: int

    @classmethod
    def from_flat(
        cls,
        values: np.ndarray,
        flat_index: np.ndarray,
        patches: np.ndarray,
        map_shape: tuple[int, int],
        stride: int,
    ) -> PeakCandidates:
        """From a ``peaks`` graph's outputs: flat cell index (B, C, K) = row * width + col."""
        rows, cols = np.divmod(np.asarray(flat_index, np.int64), map_shape[1])
        return cls(
            np.asarray(values, np.float32),
            rows,
            cols,
            np.asarray(patches, np.float32),
            tuple(map_shape),
            stride,
        )

    def cell_points(self) -> np.ndarray:
        """(B, C, K, 2) unrefined candidate positions in input pixels (x, y)."""
        return np.stack([self.cols * self.stride, self.rows * self.stride], axis=-1).astype(np.float32)


def find_candidates(maps: np.ndarray, k: int, stride: int, floor: float = -np.inf) -> PeakCandidates:
    """Top-``k`` local maxima (>= their 3x3 neighbours) of each channel of maps (B, C, H, W), best
    first, ties by position. Slots beyond a channel's maxima hold NOT_A_PEAK at cell 0.

    Cells not above ``floor`` are never candidates: with the peak threshold as floor, the result
    refines to the same points, and the scan skips the background's many tiny maxima.
    """
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    batch, channels, height, width = maps.shape
    k = min(k, height * width)
    values = np.full((batch, channels, k), NOT_A_PEAK, np.float32)
    flat = np.zeros((batch, channels, k), np.int64)
    patches = np.zeros((batch, channels, k, 3, 3), np.float32)
    kernels.load().candidates(maps, np.float32(floor), values, flat, patches)
    rows, cols = np.divmod(flat, width)
    return PeakCandidates(values, rows, cols, patches, (height, width), stride)


def refine_candidates(
    candidates: PeakCandidates, threshold: float, maps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Subpixel points (B, C, K, 2) in input pixels, NaN where the value is not above
    ``threshold``, and scores (B, C, K).

    Without ``maps``: a parabola through each candidate and its neighbours, per axis. With the maps
    (B, C, H, W): the centre of mass of the raw values in the INTEGRAL_WINDOW x INTEGRAL_WINDOW cells around
    each candidate (cells past the border count as 0), as SLEAP and sleap-nn refine.
    """
    points = np.empty((*candidates.values.shape, 2), np.float32)
    height, width = candidates.map_shape
    window = (
        np.zeros((1, 1, 1, 1), np.float32) if maps is None else np.ascontiguousarray(maps, dtype=np.float32)
    )
    kernels.load().refine(
        np.ascontiguousarray(candidates.patches, np.float32),
        window,
        np.ascontiguousarray(candidates.values, np.float32),
        np.ascontiguousarray(candidates.rows, np.int64),
        np.ascontiguousarray(candidates.cols, np.int64),
        height,
        width,
        float(candidates.stride),
        float(threshold),
        0 if maps is None else INTEGRAL_WINDOW // 2,
        points,
    )
    return points, candidates.values.astype(np.float32)
