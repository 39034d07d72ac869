"""Anti-aliased capsules (round-capped segments, discs when the ends meet): the geometry the synthetic
renderer and ``posestream render`` both paint with."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def capsule_box(x0: float, y0: float, x1: float, y1: float, reach: float, height: int, width: int):
    """Pixel bounds (xmin, xmax, ymin, ymax) of a capsule ``reach`` around the segment, clipped to the
    image."""
    xmin, xmax = max(int(min(x0, x1) - reach), 0), min(int(max(x0, x1) + reach) + 1, width)
    ymin, ymax = max(int(min(y0, y1) - reach), 0), min(int(max(y0, y1) + reach) + 1, height)
    return xmin, xmax, ymin, ymax


@numba.njit(cache=True, nogil=True)
def capsule_coverage(
    x: float, y: float, x0: float, y0: float, x1: float, y1: float, r0: float, r1: float
) -> float:
    """How much of pixel (x, y) the capsule covers, 0 to 1 (radius r0 at the start, r1 at the end)."""
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = 0.0
    if length2 > 0.0:
        t = min(max(((x - x0) * dx + (y - y0) * dy) / length2, 0.0), 1.0)
    ex, ey = x - (x0 + t * dx), y - (y0 + t * dy)
    return min(max(r0 + t * (r1 - r0) - np.sqrt(ex * ex + ey * ey) + 0.5, 0.0), 1.0)
