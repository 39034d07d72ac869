"""Pure-numpy reference of the engine's numba postprocessing kernels (peak candidates, refinement,
PAF samples), written the obvious vectorised way; the tests hold the engine to it."""

from __future__ import annotations

import numpy as np
from posestream.engine.paf_grouping import N_PAF_SAMPLES
from posestream.engine.peaks import NOT_A_PEAK, PeakCandidates


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


def pair_dots(candidates: PeakCandidates, pafs: np.ndarray, edges: np.ndarray, paf_stride: int,
              n_samples: int = N_PAF_SAMPLES) -> np.ndarray:  # fmt: skip
    """PAF samples along every candidate pair of every edge.

    pafs: (B, 2 * E, Hp, Wp), x and y of edge e in channels 2e and 2e + 1; edges: (E, 2).
    Returns (B, E, K, K, n_samples): for edge (a, b), [.., i, j, s] is the field's dot product
    with the unit vector from candidate i of node a to candidate j of node b, at sample s.
    """
    points = candidates.cell_points()  # (B, C, K, 2)
    src = points[:, edges[:, 0]][:, :, :, None, None, :]  # (B, E, K, 1, 1, 2)
    dst = points[:, edges[:, 1]][:, :, None, :, None, :]  # (B, E, 1, K, 1, 2)
    delta = dst - src  # (B, E, K, K, 1, 2)
    t = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)[:, None]  # (S, 1)
    samples = src + t * delta  # (B, E, K, K, S, 2)
    height, width = pafs.shape[2:]
    col = np.clip(np.rint(samples[..., 0] / paf_stride), 0, width - 1).astype(np.int64)
    row = np.clip(np.rint(samples[..., 1] / paf_stride), 0, height - 1).astype(np.int64)
    batch, n_edges = pafs.shape[0], len(edges)
    b = np.arange(batch)[:, None, None, None, None]
    e = np.arange(n_edges)[None, :, None, None, None]
    field_x, field_y = pafs[b, 2 * e, row, col], pafs[b, 2 * e + 1, row, col]  # (B, E, K, K, S)
    length = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)  # (B, E, K, K, 1)
    unit = delta / np.maximum(length, np.float32(1e-6))[..., None]
    return (field_x * unit[..., 0] + field_y * unit[..., 1]).astype(np.float32)
