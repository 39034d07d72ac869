"""Loops of multi-camera geometry (``posestream.multiview``): OpenCV's camera model (pinhole, distortion
k1 k2 p1 p2 k3) forwards and backwards, score-weighted linear triangulation with outlier rejection by
reprojection, and the cost of pairing instances of two cameras. The one implementation of that model:
``multiview.camera.Camera`` calls these."""

from __future__ import annotations

import numpy as np

from posestream.engine.kernels.constants import UNMATCHED_COST
from posestream.engine.kernels.jit import helper, inline_helper, kernel

UNDISTORT_STEPS = 20  # Newton steps at most; a point stops once it moves < 1e-13 (normalised units)


@inline_helper
def _distort(x: float, y: float, k: np.ndarray) -> tuple[float, float]:
    """Ideal normalised coordinates to distorted ones."""
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[4]))
    return (
        x * radial + 2.0 * k[2] * x * y + k[3] * (r2 + 2.0 * x * x),
        y * radial + k[2] * (r2 + 2.0 * y * y) + 2.0 * k[3] * x * y,
    )


@helper
def _undistort_one(u: float, v: float, intrinsics: np.ndarray, k: np.ndarray) -> tuple[float, float]:
    """A pixel to ideal normalised coordinates: the distortion inverted by Newton's method (3-5 steps);
    NaN where it does not converge (far outside the region the distortion model describes)."""
    y0 = (v - intrinsics[1, 2]) / intrinsics[1, 1]
    x0 = (u - intrinsics[0, 2] - intrinsics[0, 1] * y0) / intrinsics[0, 0]
    x, y = x0, y0
    for _ in range(UNDISTORT_STEPS):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[4]))
        slope = k[0] + r2 * (2.0 * k[1] + 3.0 * r2 * k[4])  # d radial / d r2
        fx, fy = _distort(x, y, k)
        fx, fy = fx - x0, fy - y0
        jxx = radial + 2.0 * x * x * slope + 2.0 * k[2] * y + 6.0 * k[3] * x
        jxy = 2.0 * x * y * slope + 2.0 * k[2] * x + 2.0 * k[3] * y
        jyy = radial + 2.0 * y * y * slope + 6.0 * k[2] * y + 2.0 * k[3] * x
        det = jxx * jyy - jxy * jxy
        if det == 0.0 or not np.isfinite(det):
            break
        dx, dy = (jyy * fx - jxy * fy) / det, (jxx * fy - jxy * fx) / det
        x, y = x - dx, y - dy
        if abs(dx) + abs(dy) < 1e-13:
            break
    fx, fy = _distort(x, y, k)
    if not abs(fx - x0) + abs(fy - y0) < 1e-9:
        return np.nan, np.nan
    return x, y


@helper
def _project_one(
    p: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray, k: np.ndarray
) -> tuple[float, float]:
    """A world point (3,) to pixels; NaN behind the camera."""
    xc = extrinsics[0, 0] * p[0] + extrinsics[0, 1] * p[1] + extrinsics[0, 2] * p[2] + extrinsics[0, 3]
    yc = extrinsics[1, 0] * p[0] + extrinsics[1, 1] * p[1] + extrinsics[1, 2] * p[2] + extrinsics[1, 3]
    zc = extrinsics[2, 0] * p[0] + extrinsics[2, 1] * p[1] + extrinsics[2, 2] * p[2] + extrinsics[2, 3]
    if not zc > 0.0:  # behind the camera (or NaN): not in its view
        return np.nan, np.nan
    x, y = _distort(xc / zc, yc / zc, k)
    return intrinsics[0, 0] * x + intrinsics[0, 1] * y + intrinsics[0, 2], intrinsics[1, 1] * y + intrinsics[
        1, 2
    ]


@helper
def _solve(
    normalized: np.ndarray, weights: np.ndarray, extrinsics: np.ndarray, a: np.ndarray, out: np.ndarray
) -> bool:
    """The weighted least-squares point of the cameras with weight > 0, into out (3,); False if degenerate.

    Each camera gives two linear equations on (X, 1): x * E[2] - E[0] and y * E[2] - E[1]; ``a`` (3, 4) is
    scratch for the first three rows of their normal matrix."""
    a[:] = 0.0
    for c in range(weights.shape[0]):
        w = weights[c]
        if not w > 0.0:
            continue
        for row in range(2):
            x = normalized[c, row]
            r0 = x * extrinsics[c, 2, 0] - extrinsics[c, row, 0]
            r1 = x * extrinsics[c, 2, 1] - extrinsics[c, row, 1]
            r2 = x * extrinsics[c, 2, 2] - extrinsics[c, row, 2]
            r3 = x * extrinsics[c, 2, 3] - extrinsics[c, row, 3]
            for i, ri in enumerate((r0, r1, r2)):
                a[i, 0] += w * ri * r0
                a[i, 1] += w * ri * r1
                a[i, 2] += w * ri * r2
                a[i, 3] += w * ri * r3
    minor0 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    minor1 = a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0]
    minor2 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * minor0 - a[0, 1] * minor1 + a[0, 2] * minor2
    scale = a[0, 0] + a[1, 1] + a[2, 2]
    if not np.isfinite(det) or abs(det) <= 1e-12 * scale * scale * scale:
        return False
    b0, b1, b2 = -a[0, 3], -a[1, 3], -a[2, 3]  # Cramer's rule on a[:, :3] X = b
    out[0] = (
        b0 * minor0 - a[0, 1] * (b1 * a[2, 2] - a[1, 2] * b2) + a[0, 2] * (b1 * a[2, 1] - a[1, 1] * b2)
    ) / det
    out[1] = (
        a[0, 0] * (b1 * a[2, 2] - a[1, 2] * b2) - b0 * minor1 + a[0, 2] * (a[1, 0] * b2 - b1 * a[2, 0])
    ) / det
    out[2] = (
        a[0, 0] * (a[1, 1] * b2 - b1 * a[2, 1]) - a[0, 1] * (a[1, 0] * b2 - b1 * a[2, 0]) + b0 * minor2
    ) / det
    return True


@kernel
def project_points(
    points: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray, k: np.ndarray, out: np.ndarray
) -> None:
    """World points (P, 3) to pixels (P, 2) in one camera; NaN stays NaN."""
    for p in range(points.shape[0]):
        out[p, 0], out[p, 1] = _project_one(points[p], extrinsics, intrinsics, k)


@kernel
def undistort_points(pixels: np.ndarray, intrinsics: np.ndarray, k: np.ndarray, out: np.ndarray) -> None:
    """Pixels (P, 2) of one camera to ideal normalised coordinates (P, 2); NaN stays NaN."""
    for p in range(pixels.shape[0]):
        out[p, 0], out[p, 1] = _undistort_one(pixels[p, 0], pixels[p, 1], intrinsics, k)


@helper
def _point(
    pixels: np.ndarray,
    weights: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    threshold: float,
    min_cameras: int,
    normalized: np.ndarray,
    scratch: np.ndarray,
    point: np.ndarray,
    previous: np.ndarray,
    used: np.ndarray,
    errors: np.ndarray,
) -> None:
    """One point from its observations (C, 2) and weights (C,) (0: unseen; changed here), into point (3,),
    used (C,) and errors (C,), as ``triangulate_points`` describes; ``normalized`` (C, 2), ``scratch``
    (3, 4) and ``previous`` (3,) are scratch."""
    n_cameras = weights.shape[0]
    count = 0
    for c in range(n_cameras):
        if not (np.isfinite(pixels[c, 0]) and np.isfinite(pixels[c, 1])):
            weights[c] = 0.0
        if weights[c] > 0.0:
            normalized[c, 0], normalized[c, 1] = _undistort_one(
                pixels[c, 0], pixels[c, 1], intrinsics[c], distortions[c]
            )
            if np.isfinite(normalized[c, 0]):
                count += 1
            else:  # outside what the distortion model describes: unseen
                weights[c] = 0.0
    solved = count >= min_cameras and _solve(normalized, weights, extrinsics, scratch, point)
    while solved and threshold > 0.0 and count > min_cameras:
        worst, worst_error = -1, threshold
        for c in range(n_cameras):
            if weights[c] > 0.0:
                u, v = _project_one(point, extrinsics[c], intrinsics[c], distortions[c])
                e = np.sqrt((u - pixels[c, 0]) ** 2 + (v - pixels[c, 1]) ** 2)
                if not e <= worst_error:  # NaN: the point lies behind this camera
                    worst, worst_error = c, np.inf if np.isnan(e) else e
        if worst < 0:
            break
        kept_weight = weights[worst]
        previous[:] = point
        weights[worst] = 0.0
        if not _solve(normalized, weights, extrinsics, scratch, point):  # degenerate without it: keep it
            weights[worst] = kept_weight
            point[:] = previous
            break
        count -= 1
    for c in range(n_cameras):
        used[c] = 1 if solved and weights[c] > 0.0 else 0
    if not solved:
        point[:] = np.nan
    for c in range(n_cameras):
        if solved and np.isfinite(pixels[c, 0]) and np.isfinite(pixels[c, 1]):
            u, v = _project_one(point, extrinsics[c], intrinsics[c], distortions[c])
            errors[c] = np.sqrt((u - pixels[c, 0]) ** 2 + (v - pixels[c, 1]) ** 2)
        else:
            errors[c] = np.nan


@kernel
def triangulate_points(
    pixels: np.ndarray,
    weights: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    threshold: float,
    min_cameras: int,
    points: np.ndarray,
    used: np.ndarray,
    errors: np.ndarray,
) -> None:
    """Observations (C, P, 2) with weights (C, P) (0: unseen) to points (P, 3), the observations each was
    solved from (C, P: 1 used) and each camera's reprojection error (C, P), NaN where unseen.

    While the worst camera of a point reprojects more than ``threshold`` pixels off (threshold <= 0: never)
    and more than ``min_cameras`` cameras remain, it is left out and the point solved again. A point of
    fewer than ``min_cameras`` cameras is NaN, solved from none."""
    n_cameras, n_points = weights.shape
    observed, w = np.empty((n_cameras, 2)), np.empty(n_cameras)
    normalized, scratch = np.empty((n_cameras, 2)), np.empty((3, 4))
    previous, point_used, point_errors = np.empty(3), np.empty(n_cameras, np.uint8), np.empty(n_cameras)
    for p in range(n_points):
        observed[:] = pixels[:, p]
        w[:] = weights[:, p]
        _point(observed, w, extrinsics, intrinsics, distortions, threshold, min_cameras, normalized, scratch,
               points[p], previous, point_used, point_errors)  # fmt: skip
        used[:, p] = point_used
        errors[:, p] = point_errors


@helper
def _pair_cost(
    reference: np.ndarray,
    other: np.ndarray,
    c: int,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    pair: np.ndarray,
    normalized: np.ndarray,
    scratch: np.ndarray,
    point: np.ndarray,
    errors: np.ndarray,
) -> float:
    """The cost of one reference instance (N, 2), seen by camera 0, and one instance (N, 2) of camera c
    being one animal (``pair_costs``); ``pair`` (2, 3, 4), ``normalized`` (2, 2), ``scratch`` (3, 4),
    ``point`` (3,) and ``errors`` (N,) are scratch."""
    weights = np.ones(2)
    pair[0], pair[1] = extrinsics[0], extrinsics[c]
    count = 0
    for n in range(reference.shape[0]):
        ur, vr, uo, vo = reference[n, 0], reference[n, 1], other[n, 0], other[n, 1]
        if not (np.isfinite(ur) and np.isfinite(vr) and np.isfinite(uo) and np.isfinite(vo)):
            continue
        normalized[0, 0], normalized[0, 1] = _undistort_one(ur, vr, intrinsics[0], distortions[0])
        normalized[1, 0], normalized[1, 1] = _undistort_one(uo, vo, intrinsics[c], distortions[c])
        if not (np.isfinite(normalized[0, 0]) and np.isfinite(normalized[1, 0])):
            continue
        if not _solve(normalized, weights, pair, scratch, point):
            continue
        u0, v0 = _project_one(point, extrinsics[0], intrinsics[0], distortions[0])
        u1, v1 = _project_one(point, extrinsics[c], intrinsics[c], distortions[c])
        e0, e1 = np.sqrt((u0 - ur) ** 2 + (v0 - vr) ** 2), np.sqrt((u1 - uo) ** 2 + (v1 - vo) ** 2)
        if np.isfinite(e0) and np.isfinite(e1):  # NaN: behind a camera
            errors[count] = max(e0, e1)
            count += 1
    return np.median(errors[:count]) if count else np.nan


@kernel
def pair_costs(
    reference: np.ndarray,
    other: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    out: np.ndarray,
) -> None:
    """How well each instance of camera 0 (reference (F, Ti, N, 2)) and each of camera 1 (other
    (F, Tj, N, 2)) are one animal: the median over the nodes both see of the worse camera's reprojection
    error, each node triangulated from the two cameras alone. Into out (F, Ti, Tj); NaN where a pair shares
    no node (or none solves)."""
    pair, normalized, scratch = np.empty((2, 3, 4)), np.empty((2, 2)), np.empty((3, 4))
    point, errors = np.empty(3), np.empty(reference.shape[2])
    for f in range(reference.shape[0]):
        for i in range(reference.shape[1]):
            for j in range(other.shape[1]):
                out[f, i, j] = _pair_cost(
                    reference[f, i], other[f, j], 1, extrinsics, intrinsics, distortions, pair, normalized,
                    scratch, point, errors,
                )  # fmt: skip


@helper
def _assign(cost: np.ndarray, match: np.ndarray) -> None:
    """Optimal assignment on a square cost (K, K): match[row] = its column (Kuhn-Munkres with potentials,
    O(K^3): a live group's few instances)."""
    k = cost.shape[0]
    u, v = np.zeros(k + 1), np.zeros(k + 1)
    owner, way = np.zeros(k + 1, np.int64), np.zeros(k + 1, np.int64)  # column -> row (1-based; 0: none)
    smallest, done = np.empty(k + 1), np.empty(k + 1, np.bool_)
    for row in range(1, k + 1):
        owner[0], column = row, 0
        smallest[:], done[:] = np.inf, False
        while True:
            done[column] = True
            current, delta, nearest = owner[column], np.inf, 0
            for j in range(1, k + 1):
                if not done[j]:
                    reduced = cost[current - 1, j - 1] - u[current] - v[j]
                    if reduced < smallest[j]:
                        smallest[j], way[j] = reduced, column
                    if smallest[j] < delta:
                        delta, nearest = smallest[j], j
            for j in range(k + 1):
                if done[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    smallest[j] -= delta
            column = nearest
            if owner[column] == 0:
                break
        while column:
            previous = way[column]
            owner[column] = owner[previous]
            column = previous
    for j in range(1, k + 1):
        if owner[j] > 0:
            match[owner[j] - 1] = j - 1


@kernel
def triangulate_group(
    pixels: np.ndarray,
    scores: np.ndarray,
    counts: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    threshold: float,
    min_cameras: int,
    points: np.ndarray,
    used: np.ndarray,
    errors: np.ndarray,
    paired: np.ndarray,
) -> None:
    """One moment of V cameras joined in 3D, in one call (a live group: each call's hand-over of the GIL
    costs more than its work). pixels (V, T, N, 2) and scores (V, T, N): each camera's instances, the first
    ``counts[v]`` of its T slots; camera 0 is the reference.

    Each other camera's instances are paired with the reference's by ``pair_costs`` and optimal assignment;
    a pair that shares no node, or whose cost is above ``threshold`` (threshold > 0: the same pixels that
    make an observation an outlier; two animals, not one, when one camera misses one of them), is left
    apart. paired[v, i] is camera v's instance joined with reference instance i (-1: none). Each reference
    instance's nodes are then triangulated from the instances joined with it (``triangulate_points``):
    points (T, N, 3), used (V, T, N), errors (V, T, N); rows past counts[0] are NaN."""
    n_views, n_slots, n_nodes = scores.shape
    n_reference = counts[0]
    pair, normalized, scratch = np.empty((2, 3, 4)), np.empty((max(n_views, 2), 2)), np.empty((3, 4))
    point, previous, node_errors = np.empty(3), np.empty(3), np.empty(n_nodes)
    gate = threshold if threshold > 0.0 else np.inf  # the most a pair may cost
    paired[:] = -1
    for i in range(n_reference):
        paired[0, i] = i
    for v in range(1, n_views):
        if n_reference == 1 and counts[v] == 1 and gate == np.inf:  # nothing to choose or gate
            paired[v, 0] = 0
            continue
        size = max(n_reference, counts[v])
        cost = np.zeros((size, size))  # rows or columns past the instances: dummies, cost 0
        for i in range(n_reference):
            for j in range(counts[v]):
                cost[i, j] = _pair_cost(pixels[0, i], pixels[v, j], v, extrinsics, intrinsics, distortions,
                                        pair, normalized[:2], scratch, point, node_errors)  # fmt: skip
        match = np.empty(size, np.int64)
        shared = np.isfinite(cost) & (cost <= gate)
        _assign(np.where(shared, cost, UNMATCHED_COST), match)
        for i in range(n_reference):
            if match[i] < counts[v] and shared[i, match[i]]:
                paired[v, i] = match[i]
    observed, w = np.empty((n_views, 2)), np.empty(n_views)
    point_used, point_errors = np.empty(n_views, np.uint8), np.empty(n_views)
    points[:] = np.nan
    used[:] = 0
    errors[:] = np.nan
    for i in range(n_reference):
        for n in range(n_nodes):
            for v in range(n_views):
                j = paired[v, i]
                observed[v, 0] = pixels[v, j, n, 0] if j >= 0 else np.nan
                observed[v, 1] = pixels[v, j, n, 1] if j >= 0 else np.nan
                w[v] = scores[v, j, n] if j >= 0 and np.isfinite(scores[v, j, n]) else 0.0
            _point(observed, w, extrinsics, intrinsics, distortions, threshold, min_cameras, normalized,
                   scratch, points[i, n], previous, point_used, point_errors)  # fmt: skip
            used[:, i, n] = point_used
            errors[:, i, n] = point_errors
