"""Peaks of confidence maps: top-K local maxima per channel, then subpixel refinement.

Two steps, so that both export output modes meet in the middle:

1. candidates: for every channel, the K highest cells that are the maximum of
   their 3x3 neighbourhood, with that neighbourhood (``find_candidates`` here on
   CPU for ``maps`` models; the same computation inside the graph for ``peaks``
   models, see ``posestream.export.graph``);
2. refinement: a parabola through each candidate and its two neighbours per
   axis (offset clamped to half a cell, none at the map border), and a
   threshold on the candidate's value (``refine_candidates``).

Grid convention (shared with training targets): cell (row i, column j) of a
map at stride ``s`` is input pixel (x = j * s, y = i * s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOT_A_PEAK = -1e4
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
    def from_flat(cls, values: np.ndarray, flat_index: np.ndarray, patches: np.ndarray,
                  map_shape: tuple[int, int], stride: int) -> PeakCandidates:  # fmt: skip
        """From a ``peaks`` graph's outputs: flat cell index (B, C, K) = row * width + col."""
        rows, cols = np.divmod(np.asarray(flat_index, np.int64), map_shape[1])
        return cls(np.asarray(values, np.float32), rows, cols, np.asarray(patches, np.float32),
                   tuple(map_shape), stride)  # fmt: skip

    def cell_points(self) -> np.ndarray:
        """(B, C, K, 2) unrefined candidate positions in input pixels (x, y)."""
        return np.stack([self.cols * self.stride, self.rows * self.stride], axis=-1).astype(np.float32)


def find_candidates(maps: np.ndarray, k: int, stride: int) -> PeakCandidates:
    """Top-``k`` local maxima (3x3, ties kept) of each channel of maps (B, C, H, W)."""
    batch, channels, height, width = maps.shape
    maps = np.asarray(maps, np.float32)
    padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    shifted = [padded[:, :, di : di + height, dj : dj + width] for di in range(3) for dj in range(3)]
    ranked = np.where(maps >= np.max(shifted, axis=0), maps, np.float32(NOT_A_PEAK)).reshape(batch, channels, -1)
    k = min(k, height * width)
    best = np.argpartition(-ranked, k - 1, axis=2)[..., :k]  # (B, C, K), unordered
    order = np.argsort(-np.take_along_axis(ranked, best, axis=2), axis=2, kind="stable")
    flat = np.take_along_axis(best, order, axis=2)
    rows, cols = np.divmod(flat, width)
    zero_padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)))
    b = np.arange(batch)[:, None, None, None, None]
    c = np.arange(channels)[None, :, None, None, None]
    offsets = np.arange(3)
    patches = zero_padded[b, c, rows[..., None, None] + offsets[:, None], cols[..., None, None] + offsets[None, :]]
    values = np.take_along_axis(ranked, flat, axis=2)
    return PeakCandidates(values, rows, cols, patches, (height, width), stride)


def refine_candidates(candidates: PeakCandidates, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Subpixel points (B, C, K, 2) in input pixels, NaN where the value is not above
    ``threshold``, and scores (B, C, K)."""
    p = candidates.patches
    centre, left, right, up, down = p[..., 1, 1], p[..., 1, 0], p[..., 1, 2], p[..., 0, 1], p[..., 2, 1]
    height, width = candidates.map_shape
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = 0.5 * (right - left) / (2 * centre - left - right)
        dy = 0.5 * (down - up) / (2 * centre - up - down)
    j, i = candidates.cols, candidates.rows
    dx = np.where(np.isfinite(dx) & (j > 0) & (j < width - 1), np.clip(dx, -0.5, 0.5), 0.0)
    dy = np.where(np.isfinite(dy) & (i > 0) & (i < height - 1), np.clip(dy, -0.5, 0.5), 0.0)
    points = np.stack([(j + dx) * candidates.stride, (i + dy) * candidates.stride], axis=-1).astype(np.float32)
    points[~(candidates.values > threshold)] = np.nan
    return points, candidates.values.astype(np.float32)


def global_peaks(maps: np.ndarray, stride: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The refined maximum of each channel of maps (B, C, H, W): points (B, C, 2), NaN where
    not above ``threshold``, and scores (B, C)."""
    points, scores = refine_candidates(find_candidates(maps, 1, stride), threshold)
    return points[:, :, 0], scores[:, :, 0]
