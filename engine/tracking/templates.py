"""Pose templates: each track's last pose, with the nodes the last detection lacked carried along with the
rest.

A detection that drops a node still moves the whole template (by the median shift of the nodes it shares
with it), so the next frame's similarity can use every node the track has ever seen.
"""

from __future__ import annotations

import numpy as np

from posestream.engine import kernels


def observe(
    templates: np.ndarray, rows: np.ndarray, points: np.ndarray, min_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace templates ``rows`` (K,) of ``templates`` (T, N, 2) by ``points`` (K, N, 2), the nodes a point
    lacks moved along; in place, so ``templates`` must be C-contiguous float64.

    Returns each row's shift (K, 2) (median over shared nodes; centroid to centroid when none is shared), new
    scale (K,) (square root of the box area, at least ``min_scale``) and the share of nodes the detection had
    (K,).
    """
    if templates.dtype != np.float64 or not templates.flags.c_contiguous:
        raise TypeError("pose templates must be a C-contiguous float64 array (they are updated in place)")
    return kernels.load().observe(
        templates,
        np.ascontiguousarray(rows, np.int64),
        np.ascontiguousarray(points, np.float64),
        float(min_scale),
    )
