"""Loops of multi-camera geometry (``posestream.multiview``): OpenCV's camera model (pinhole, distortion
k1 k2 p1 p2 k3) forwards and backwards, score-weighted linear triangulation with outlier rejection by
reprojection, and the cost of pairing instances of two cameras. The one implementation of that model:
``multiview.camera.Camera`` calls these."""

from __future__ import annotations

import numpy as np

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
    normalized = np.empty((n_cameras, 2))
    w = np.empty(n_cameras)
    point = np.empty(3)
    previous = np.empty(3)
    scratch = np.empty((3, 4))
    for p in range(n_points):
        count = 0
        for c in range(n_cameras):
            w[c] = weights[c, p] if np.isfinite(pixels[c, p, 0]) and np.isfinite(pixels[c, p, 1]) else 0.0
            if w[c] > 0.0:
                normalized[c, 0], normalized[c, 1] = _undistort_one(
                    pixels[c, p, 0], pixels[c, p, 1], intrinsics[c], distortions[c]
                )
                if np.isfinite(normalized[c, 0]):
                    count += 1
                else:  # outside what the distortion model describes: unseen
                    w[c] = 0.0
        solved = count >= min_cameras and _solve(normalized, w, extrinsics, scratch, point)
        while solved and threshold > 0.0 and count > min_cameras:
            worst, worst_error = -1, threshold
            for c in range(n_cameras):
                if w[c] > 0.0:
                    u, v = _project_one(point, extrinsics[c], intrinsics[c], distortions[c])
                    e = np.sqrt((u - pixels[c, p, 0]) ** 2 + (v - pixels[c, p, 1]) ** 2)
                    if not e <= worst_error:  # NaN: the point lies behind this camera
                        worst, worst_error = c, np.inf if np.isnan(e) else e
            if worst < 0:
                break
            kept_weight = w[worst]
            previous[:] = point
            w[worst] = 0.0
            if not _solve(normalized, w, extrinsics, scratch, point):  # degenerate without it: keep it
                w[worst] = kept_weight
                point[:] = previous
                break
            count -= 1
        for c in range(n_cameras):
            used[c, p] = 1 if solved and w[c] > 0.0 else 0
        for i in range(3):
            points[p, i] = point[i] if solved else np.nan
        for c in range(n_cameras):
            if solved and np.isfinite(pixels[c, p, 0]) and np.isfinite(pixels[c, p, 1]):
                u, v = _project_one(point, extrinsics[c], intrinsics[c], distortions[c])
                errors[c, p] = np.sqrt((u - pixels[c, p, 0]) ** 2 + (v - pixels[c, p, 1]) ** 2)
            else:
                errors[c, p] = np.nan


@kernel
def pair_costs(
    reference: np.ndarray,
    others: np.ndarray,
    view_of: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    out: np.ndarray,
) -> None:
    """How well each reference instance (camera 0; reference (F, Ti, N, 2)) and each other instance (others
    (F, Tj, N, 2), instance j seen by camera ``view_of[j]``) are one animal: the median over the nodes both
    see of the worse camera's reprojection error, each node triangulated from the two cameras alone. Into
    out (F, Ti, Tj); NaN where a pair shares no node (or none solves)."""
    frames, n_reference, n_nodes = reference.shape[0], reference.shape[1], reference.shape[2]
    normalized = np.empty((2, 2))
    weights = np.ones(2)
    pair = np.empty((2, 3, 4))
    point = np.empty(3)
    scratch = np.empty((3, 4))
    errors = np.empty(n_nodes)
    for j in range(others.shape[1]):
        c = view_of[j]
        pair[0], pair[1] = extrinsics[0], extrinsics[c]
        for f in range(frames):
            for i in range(n_reference):
                count = 0
                for n in range(n_nodes):
                    ur, vr = reference[f, i, n, 0], reference[f, i, n, 1]
                    uo, vo = others[f, j, n, 0], others[f, j, n, 1]
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
                    e0, e1 = (
                        np.sqrt((u0 - ur) ** 2 + (v0 - vr) ** 2),
                        np.sqrt((u1 - uo) ** 2 + (v1 - vo) ** 2),
                    )
                    if np.isfinite(e0) and np.isfinite(e1):  # NaN: behind a camera
                        errors[count] = max(e0, e1)
                        count += 1
                out[f, i, j] = np.median(errors[:count]) if count else np.nan
