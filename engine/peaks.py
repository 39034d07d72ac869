"""Peaks of confidence maps: global maxima and local maxima (NMS), with subpixel refinement.

Grid convention (shared with training targets): cell (row i, column j) of a
map at stride ``s`` is input pixel (x = j * s, y = i * s). Refinement fits a
parabola through each peak and its two neighbours per axis (offset clamped to
half a cell), so a Gaussian peak between cells is found to a fraction of a cell.
"""

from __future__ import annotations

import numpy as np


def _refine_offsets(maps: np.ndarray, b: np.ndarray, c: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic subpixel offsets (dx, dy) in cells at the given peak cells of maps (B, C, H, W)."""
    height, width = maps.shape[2:]
    centre = maps[b, c, i, j]
    left = maps[b, c, i, np.maximum(j - 1, 0)]
    right = maps[b, c, i, np.minimum(j + 1, width - 1)]
    up = maps[b, c, np.maximum(i - 1, 0), j]
    down = maps[b, c, np.minimum(i + 1, height - 1), j]
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = 0.5 * (right - left) / (2 * centre - left - right)
        dy = 0.5 * (down - up) / (2 * centre - up - down)
    dx = np.where(np.isfinite(dx) & (j > 0) & (j < width - 1), np.clip(dx, -0.5, 0.5), 0.0)
    dy = np.where(np.isfinite(dy) & (i > 0) & (i < height - 1), np.clip(dy, -0.5, 0.5), 0.0)
    return dx, dy


def global_peaks(maps: np.ndarray, stride: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The maximum of each channel.

    maps: (B, C, H, W). Returns points (B, C, 2) in input pixels (NaN where the
    peak is below ``threshold``) and scores (B, C).
    """
    batch, channels, height, width = maps.shape
    flat = maps.reshape(batch, channels, -1).argmax(axis=2)  # (B, C)
    i, j = np.divmod(flat, width)
    b, c = np.meshgrid(np.arange(batch), np.arange(channels), indexing="ij")
    scores = maps[b, c, i, j]
    dx, dy = _refine_offsets(maps, b, c, i, j)
    points = np.stack([(j + dx) * stride, (i + dy) * stride], axis=-1).astype(np.float32)
    points[scores < threshold] = np.nan
    return points, scores.astype(np.float32)


def local_peaks(maps: np.ndarray, stride: int, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every cell above ``threshold`` that is the maximum of its 3x3 neighbourhood.

    maps: (B, C, H, W). Returns, one row per peak: sample (P,), channel (P,),
    points (P, 2) in input pixels and scores (P,), ordered by sample, channel, then score descending.
    """
    padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    height, width = maps.shape[2:]
    neighbourhood = np.max(
        [padded[:, :, di : di + height, dj : dj + width] for di in range(3) for dj in range(3)], axis=0
    )
    b, c, i, j = np.nonzero((maps >= neighbourhood) & (maps > threshold))
    scores = maps[b, c, i, j]
    dx, dy = _refine_offsets(maps, b, c, i, j)
    points = np.stack([(j + dx) * stride, (i + dy) * stride], axis=-1).astype(np.float32)
    order = np.lexsort((-scores, c, b))
    return b[order], c[order], points[order], scores[order].astype(np.float32)
