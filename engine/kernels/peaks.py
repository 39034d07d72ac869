"""Loops of peak finding (``posestream.engine.model.peaks`` calls them): the top-K local maxima of each map,
and their subpixel refinement."""

from __future__ import annotations

import numpy as np

from posestream.engine.kernels.jit import inline_helper, kernel


@inline_helper
def _any_above(row, floor):  # pragma: no cover - compiled
    above = 0
    for v in row:  # a branch-free count, which the compiler vectorizes
        above += v > floor
    return above > 0


@inline_helper
def _is_local_max(maps, b, c, i, j, v):  # pragma: no cover - compiled
    height, width = maps.shape[2], maps.shape[3]
    for y in range(max(i - 1, 0), min(i + 2, height)):
        for x in range(max(j - 1, 0), min(j + 2, width)):
            if maps[b, c, y, x] > v:
                return False
    return True


@inline_helper
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


@inline_helper
def _offset(before, centre, after):  # pragma: no cover - compiled
    """Vertex of the parabola through three samples, in cells, clamped to half a cell."""
    curvature = 2.0 * centre - before - after
    if curvature == 0.0:
        return 0.0
    offset = 0.5 * (after - before) / curvature
    if not np.isfinite(offset):
        return 0.0
    return min(max(offset, -0.5), 0.5)


@kernel
def candidates(maps, floor, values, flat, patches):  # pragma: no cover - compiled
    """maps (B, C, H, W) -> in place: values (B, C, K) best first, flat cell index (B, C, K), and the 3x3
    patch around each (B, C, K, 3, 3)."""
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


@kernel
def refine(
    patches, maps, values, rows, cols, height, width, stride, threshold, half, points
):  # pragma: no cover
    """Subpixel points (B, C, K, 2), in place. half = 0: parabola through the 3x3 patch; half > 0: centre of
    mass of maps in a (2 half + 1) window."""
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
