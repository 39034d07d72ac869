"""Peaks of confidence maps: top-K local maxima per channel, then subpixel refinement.

Two steps, so that both export output modes meet in the middle:

1. candidates: for every channel, the K highest cells that are the maximum of
   their 3x3 neighbourhood, with that neighbourhood (``find_candidates``, a numba
   kernel, for ``maps`` models; the same computation inside the graph for
   ``peaks`` models, see ``posestream.export.graph``);
2. refinement: a parabola through each candidate and its two neighbours per
   axis (offset clamped to half a cell, none at the map border), and a
   threshold on the candidate's value (``refine_candidates``).

Grid convention (shared with training targets): cell (row i, column j) of a
map at stride ``s`` is input pixel (x = j * s, y = i * s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

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
    def from_flat(cls, values: np.ndarray, flat_index: np.ndarray, patches: np.ndarray,
                  map_shape: tuple[int, int], stride: int) -> PeakCandidates:  # fmt: skip
        """From a ``peaks`` graph's outputs: flat cell index (B, C, K) = row * width + col."""
        rows, cols = np.divmod(np.asarray(flat_index, np.int64), map_shape[1])
        return cls(np.asarray(values, np.float32), rows, cols, np.asarray(patches, np.float32),
                   tuple(map_shape), stride)  # fmt: skip

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
    _candidates_kernel(maps, np.float32(floor), values, flat, patches)
    rows, cols = np.divmod(flat, width)
    return PeakCandidates(values, rows, cols, patches, (height, width), stride)


def refine_candidates(candidates: PeakCandidates, threshold: float, maps: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Subpixel points (B, C, K, 2) in input pixels, NaN where the value is not above
    ``threshold``, and scores (B, C, K).

    Without ``maps``: a parabola through each candidate and its neighbours, per axis. With the maps
    (B, C, H, W): the centre of mass of the raw values in the INTEGRAL_WINDOW x INTEGRAL_WINDOW cells around
    each candidate (cells past the border count as 0), as SLEAP and sleap-nn refine.
    """
    points = np.empty((*candidates.values.shape, 2), np.float32)
    height, width = candidates.map_shape
    window = np.zeros((1, 1, 1, 1), np.float32) if maps is None else np.ascontiguousarray(maps, dtype=np.float32)
    _refine_kernel(np.ascontiguousarray(candidates.patches, dtype=np.float32), window, candidates.values,
                   candidates.rows, candidates.cols, height, width, float(candidates.stride), float(threshold),
                   0 if maps is None else INTEGRAL_WINDOW // 2, points)  # fmt: skip
    return points, candidates.values.astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _candidates_kernel(maps, floor, values, flat, patches):  # pragma: no cover - compiled
    batch, channels, height, width = maps.shape
    k = values.shape[2]
    for b in range(batch):
        for c in range(channels):
            count = 0
            for i in range(height):
                if not _any_above(maps[b, c, i], floor):
                    continue  # most rows of a map are background
                for j in range(width):
                    v = maps[b, c, i, j]
                    if v <= floor:
                        continue
                    if count == k and v <= values[b, c, k - 1]:
                        continue  # cannot enter the top k (ties keep the earlier cell)
                    if not _is_local_max(maps, b, c, i, j, v):
                        continue
                    at = min(count, k - 1)
                    while at > 0 and values[b, c, at - 1] < v:
                        values[b, c, at] = values[b, c, at - 1]
                        flat[b, c, at] = flat[b, c, at - 1]
                        at -= 1
                    values[b, c, at] = v
                    flat[b, c, at] = i * width + j
                    count = min(count + 1, k)
            for slot in range(k):
                i, j = flat[b, c, slot] // width, flat[b, c, slot] % width
                for di in range(3):
                    for dj in range(3):
                        y, x = i + di - 1, j + dj - 1
                        if 0 <= y < height and 0 <= x < width:
                            patches[b, c, slot, di, dj] = maps[b, c, y, x]


@numba.njit(cache=True, nogil=True, inline="always")
def _any_above(row, floor):  # pragma: no cover - compiled
    above = 0
    for v in row:  # a branch-free count, which the compiler vectorizes
        above += v > floor
    return above > 0


@numba.njit(cache=True, nogil=True, inline="always")
def _is_local_max(maps, b, c, i, j, v):  # pragma: no cover - compiled
    height, width = maps.shape[2], maps.shape[3]
    for y in range(max(i - 1, 0), min(i + 2, height)):
        for x in range(max(j - 1, 0), min(j + 2, width)):
            if maps[b, c, y, x] > v:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def _refine_kernel(patches, maps, values, rows, cols, height, width, stride, threshold, half, points):  # pragma: no cover
    """half = 0: parabola through the 3x3 patch; half > 0: centre of mass of maps in a (2 half + 1) window."""
    batch, channels, k = values.shape
    for b in range(batch):
        for c in range(channels):
            for s in range(k):
                if not values[b, c, s] > threshold:
                    points[b, c, s, 0] = np.nan
                    points[b, c, s, 1] = np.nan
                    continue
                i, j = rows[b, c, s], cols[b, c, s]
                if half:
                    dx, dy = _centre_of_mass(maps[b, c], i, j, half)
                else:
                    p = patches[b, c, s]
                    dx = _offset(p[1, 0], p[1, 1], p[1, 2]) if 0 < j < width - 1 else 0.0
                    dy = _offset(p[0, 1], p[1, 1], p[2, 1]) if 0 < i < height - 1 else 0.0
                points[b, c, s, 0] = (j + dx) * stride
                points[b, c, s, 1] = (i + dy) * stride


@numba.njit(cache=True, nogil=True, inline="always")
def _centre_of_mass(cells, i, j, half):  # pragma: no cover - compiled
    """(dx, dy) of the mass of cells (H, W) in the window around (i, j), in cells; (0, 0) without mass."""
    height, width = cells.shape
    total, sx, sy = 0.0, 0.0, 0.0
    for di in range(-half, half + 1):
        for dj in range(-half, half + 1):
            if 0 <= i + di < height and 0 <= j + dj < width:
                v = cells[i + di, j + dj]
                total += v
                sx += dj * v
                sy += di * v
    if total == 0.0:
        return 0.0, 0.0
    return sx / total, sy / total


@numba.njit(cache=True, nogil=True, inline="always")
def _offset(before, centre, after):  # pragma: no cover - compiled
    """Vertex of the parabola through three samples, in cells, clamped to half a cell."""
    curvature = 2.0 * centre - before - after
    if curvature == 0.0:
        return 0.0
    offset = 0.5 * (after - before) / curvature
    if not np.isfinite(offset):
        return 0.0
    return min(max(offset, -0.5), 0.5)
