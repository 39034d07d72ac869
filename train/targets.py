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
    maps = np.zeros((points.shape[1], height, width), np.float32)
    for x, y in _gaussians(points, (height, width), stride, sigma):  # (n_nodes, W), (n_nodes, H)
        np.maximum(maps, y[:, :, None] * x[:, None, :], out=maps)
    return maps


def _gaussians(points: np.ndarray, shape: tuple[int, int], stride: int, sigma: float):
    """Per instance, the separable Gaussian of each node along x (n_nodes, W) and y (n_nodes, H), float32;
    zero for a missing node."""
    present = np.isfinite(points).all(axis=-1)  # (n_instances, n_nodes)
    where = np.where(present[..., None], points, 0).astype(np.float32)
    scale = np.float32(-1 / (2 * sigma**2))
    for k in range(points.shape[0]):
        on = present[k, :, None].astype(np.float32)  # (n_nodes, 1)
        x = np.exp((grid(shape[1], stride) - where[k, :, 0, None]) ** 2 * scale) * on
        y = np.exp((grid(shape[0], stride) - where[k, :, 1, None]) ** 2 * scale) * on
        yield x, y


def part_affinity_fields(
    points: np.ndarray, edges: np.ndarray, shape: tuple[int, int], stride: int, width: float
) -> np.ndarray:
    """Unit vectors along each edge, within ``width`` pixels of it, averaged where instances overlap.

    points: (n_instances, n_nodes, 2) in input pixels; edges: (n_edges, 2) node indices.
    Returns (n_edges * 2, height, width) float32: channels (2k, 2k + 1) are x, y of edge k.
    """
    height, width_cells = shape
    fields = np.zeros((len(edges), 2, height, width_cells), np.float32)
    count = np.zeros((len(edges), height, width_cells), np.float32)
    for instance in points.astype(np.float32):
        for k, (source, target) in enumerate(edges):
            _add_edge(fields[k], count[k], instance[source], instance[target], stride, width)
    fields /= np.maximum(count, 1)[:, None]
    return fields.reshape(len(edges) * 2, height, width_cells)


def _add_edge(
    field: np.ndarray, count: np.ndarray, src: np.ndarray, dst: np.ndarray, stride: int, width: float
) -> None:
    """Add one instance's edge src -> dst (float32) to ``field`` (2, H, W) and ``count`` (H, W), within the
    cells that can lie ``width`` pixels from it."""
    vec = dst - src
    length = np.float32(np.hypot(*vec))
    if not np.isfinite(length) or length <= 1e-6:
        return
    ux, uy = vec / length
    lo = np.maximum(np.floor((np.minimum(src, dst) - width) / stride).astype(int), 0)  # (x, y) cells
    hi = np.ceil((np.maximum(src, dst) + width) / stride).astype(int) + 1
    cols, rows = slice(lo[0], hi[0]), slice(lo[1], hi[1])
    rel_x = grid(count.shape[1], stride)[None, cols] - src[0]  # (1, w)
    rel_y = grid(count.shape[0], stride)[rows, None] - src[1]  # (h, 1)
    along = rel_x * ux + rel_y * uy  # (h, w)
    inside = (along >= 0) & (along <= length) & (np.abs(rel_x * uy - rel_y * ux) <= width)
    field[0, rows, cols] += inside * ux
    field[1, rows, cols] += inside * uy
    count[rows, cols] += inside


def class_maps(
    points: np.ndarray,
    track_ids: np.ndarray,
    n_classes: int,
    shape: tuple[int, int],
    stride: int,
    sigma: float,
) -> np.ndarray:
    """An identity model's class maps: map c holds the Gaussians of every node of the instances of track c
    (their max); an instance without a track (-1) is on no map.

    points: (n_instances, n_nodes, 2) in input pixels; track_ids: (n_instances,).
    Returns (n_classes, height, width) float32 in [0, 1].
    """
    maps = np.zeros((n_classes, *shape), np.float32)
    for c in range(n_classes):
        nodes = points[track_ids == c].reshape(-1, 1, 2)  # each node its own one-node "instance"
        if len(nodes):
            maps[c] = confidence_maps(nodes, shape, stride, sigma)[0]
    return maps


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
