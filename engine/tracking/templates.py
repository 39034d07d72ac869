"""Pose templates: each track's last pose, with the nodes the last detection lacked carried along with the rest.

A detection that drops a node still moves the whole template (by the median shift of the nodes it shares
with it), so the next frame's similarity can use every node the track has ever seen.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def observe(templates: np.ndarray, rows: np.ndarray, points: np.ndarray, min_scale: float):
    """Replace templates ``rows`` (K,) by ``points`` (K, N, 2), missing nodes moved along; in place.

    Returns each row's shift (K, 2) (median over shared nodes; centroid to centroid when none is shared),
    new scale (K,) (square root of the box area, at least ``min_scale``) and the share of nodes the
    detection had (K,).
    """
    k_rows, n_nodes = rows.shape[0], points.shape[1]
    shift, scale, seen = np.zeros((k_rows, 2)), np.zeros(k_rows), np.zeros(k_rows)
    for k in range(k_rows):
        old, new = templates[rows[k]], points[k]
        for axis in range(2):
            shared = np.array([new[n, axis] - old[n, axis] for n in range(n_nodes)
                               if np.isfinite(new[n, axis]) and np.isfinite(old[n, axis])])  # fmt: skip
            shift[k, axis] = np.median(shared) if shared.size else _mean(new[:, axis]) - _mean(old[:, axis])
        if not np.isfinite(shift[k, 0]) or not np.isfinite(shift[k, 1]):
            shift[k] = 0.0
        lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
        for n in range(n_nodes):
            if np.isfinite(new[n, 0]):
                old[n] = new[n]
                seen[k] += 1.0 / n_nodes
            else:
                old[n] += shift[k]
            if np.isfinite(old[n, 0]):
                lo, hi = np.minimum(lo, old[n]), np.maximum(hi, old[n])
        scale[k] = max(np.sqrt((hi[0] - lo[0]) * (hi[1] - lo[1])), min_scale) if np.isfinite(lo[0]) else min_scale
    return shift, scale, seen


@numba.njit(cache=True, nogil=True)
def _mean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when none is)."""
    total, count = 0.0, 0
    for v in values:
        if np.isfinite(v):
            total, count = total + v, count + 1
    return total / count if count else np.nan
