"""Training targets: Gaussian confidence maps and part affinity fields, vectorised.

Grid convention (shared with the engine's peak finding): output cell (row i,
column j) of a map at stride ``s`` sits at input pixel (x = j * s, y = i * s),
where pixel (x, y) is the centre of image column x, row y.
"""

from __future__ import annotations

import numpy as np


def grid(size: int, stride: int) -> np.ndarray:
    """Input-pixel coordinates of the cells along one axis of a map.  # (size,)"""
    return np.arange(size, dtype=np.float32) * stride


def confidence_maps(points: np.ndarray, shape: tuple[int, int], stride: int, sigma: float) -> np.ndarray:
    """One Gaussian per node, the max over instances.

    points: (n_instances, n_nodes, 2) in input pixels, NaN where missing.
    Returns (n_nodes, height, width) float32 in [0, 1].
    """
    height, width = shape
    n_nodes = points.shape[1]
    if points.shape[0] == 0:
        return np.zeros((n_nodes, height, width), np.float32)
    x, y = points[..., 0, None], points[..., 1, None]  # (n_instances, n_nodes, 1)
    gx = np.exp(-((grid(width, stride) - x) ** 2) / (2 * sigma**2))  # (n_instances, n_nodes, W)
    gy = np.exp(-((grid(height, stride) - y) ** 2) / (2 * sigma**2))  # (n_instances, n_nodes, H)
    maps = gy[..., :, None] * gx[..., None, :]  # (n_instances, n_nodes, H, W)
    maps = np.nan_to_num(maps, nan=0.0)
    return maps.max(axis=0).astype(np.float32)


def part_affinity_fields(
    points: np.ndarray, edges: np.ndarray, shape: tuple[int, int], stride: int, width: float
) -> np.ndarray:
    """Unit vectors along each edge, within ``width`` pixels of it, averaged where instances overlap.

    points: (n_instances, n_nodes, 2) in input pixels; edges: (n_edges, 2) node indices.
    Returns (n_edges * 2, height, width) float32: channels (2k, 2k + 1) are x, y of edge k.
    """
    height, width_cells = shape
    n_edges = len(edges)
    if points.shape[0] == 0 or n_edges == 0:
        return np.zeros((n_edges * 2, height, width_cells), np.float32)
    src = points[:, edges[:, 0]]  # (n_instances, n_edges, 2)
    dst = points[:, edges[:, 1]]
    vec = dst - src
    length = np.linalg.norm(vec, axis=-1, keepdims=True)  # (n_instances, n_edges, 1)
    valid = np.isfinite(length[..., 0]) & (length[..., 0] > 1e-6)
    unit = np.where(valid[..., None], vec / np.where(length > 1e-6, length, 1.0), 0.0)
    gx = grid(width_cells, stride)[None, None, None, :]  # (1, 1, 1, W)
    gy = grid(height, stride)[None, None, :, None]  # (1, 1, H, 1)
    rel_x = gx - np.nan_to_num(src[..., 0])[..., None, None]  # (n_instances, n_edges, 1 or H, W)
    rel_y = gy - np.nan_to_num(src[..., 1])[..., None, None]
    ux, uy = unit[..., 0, None, None], unit[..., 1, None, None]
    along = rel_x * ux + rel_y * uy  # (n_instances, n_edges, H, W)
    across = np.abs(rel_x * uy - rel_y * ux)
    inside = (
        (along >= 0)
        & (along <= np.nan_to_num(length)[..., None])
        & (across <= width)
        & valid[..., None, None]
    )
    count = inside.sum(axis=0)  # (n_edges, H, W)
    fields = np.stack([(inside * ux).sum(axis=0), (inside * uy).sum(axis=0)], axis=1)  # (n_edges, 2, H, W)
    fields = fields / np.maximum(count, 1)[:, None]
    return fields.reshape(n_edges * 2, height, width_cells).astype(np.float32)


def instance_anchors(points: np.ndarray, anchor: int | None) -> np.ndarray:
    """Each instance's anchor: the anchor node, or its bounding-box centre when the node is
    missing or none is set.  points: (n_instances, n_nodes, 2) -> (n_instances, 2)"""
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(points, axis=1), np.nanmax(points, axis=1)
    centres = (lo + hi) / 2
    if anchor is None:
        return centres.astype(np.float32)
    at_node = points[:, anchor]
    return np.where(np.isfinite(at_node), at_node, centres).astype(np.float32)
