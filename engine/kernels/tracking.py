"""Loops of identity tracking: the similarity of detections to tracks
(``posestream.engine.tracking.similarity``
says what each measure is) and the update of pose templates (``posestream.engine.tracking.templates``)."""

from __future__ import annotations

import numpy as np

from posestream.engine.kernels.jit import helper, kernel


@helper
def _mean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when none is)."""
    total, count = 0.0, 0
    for v in values:
        if np.isfinite(v):
            total, count = total + v, count + 1
    return total / count if count else np.nan


@kernel
def oks(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Keypoint similarity.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
    n_det, n_tracks, n_nodes = detections.shape[0], predicted.shape[0], detections.shape[1]
    out = np.zeros((n_det, n_tracks))
    for m in range(n_det):
        shown = 0
        for n in range(n_nodes):
            shown += np.isfinite(detections[m, n, 0])
        for t in range(n_tracks):
            total = 0.0
            for n in range(n_nodes):
                dx, dy = detections[m, n, 0] - predicted[t, n, 0], detections[m, n, 1] - predicted[t, n, 1]
                if np.isfinite(dx) and np.isfinite(dy):
                    total += np.exp(-(dx * dx + dy * dy) / (2.0 * width[t] * width[t]))
            out[m, t] = total / max(shown, 1)
    return out


@kernel
def centroid(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Centroid distance kernel over the nodes both poses have.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
    n_det, n_tracks, n_nodes = detections.shape[0], predicted.shape[0], detections.shape[1]
    out = np.zeros((n_det, n_tracks))
    for m in range(n_det):
        for t in range(n_tracks):
            sx = sy = 0.0
            shared = 0
            for n in range(n_nodes):
                dx, dy = detections[m, n, 0] - predicted[t, n, 0], detections[m, n, 1] - predicted[t, n, 1]
                if np.isfinite(dx) and np.isfinite(dy):
                    sx, sy, shared = sx + dx, sy + dy, shared + 1
            if shared:
                d2 = (sx * sx + sy * sy) / (shared * shared)
                out[m, t] = np.exp(-d2 / (2.0 * width[t] * width[t]))
    return out


@kernel
def iou(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Box IoU over the nodes both poses have, boxes padded by the width.  (M, N, 2), (T, N, 2), (T,) -> (M,
    T)"""
    n_det, n_tracks, n_nodes = detections.shape[0], predicted.shape[0], detections.shape[1]
    out = np.zeros((n_det, n_tracks))
    for m in range(n_det):
        for t in range(n_tracks):
            a = np.array([np.inf, np.inf, -np.inf, -np.inf])  # x0, y0, x1, y1 of the detection
            b = np.array([np.inf, np.inf, -np.inf, -np.inf])  # and of the prediction
            for n in range(n_nodes):
                if np.isfinite(detections[m, n, 0]) and np.isfinite(predicted[t, n, 0]):
                    for box, pose in ((a, detections[m, n]), (b, predicted[t, n])):
                        box[0], box[1] = min(box[0], pose[0]), min(box[1], pose[1])
                        box[2], box[3] = max(box[2], pose[0]), max(box[3], pose[1])
            if not np.isfinite(a[0]):
                continue
            a[:2] -= width[t]
            a[2:] += width[t]
            b[:2] -= width[t]
            b[2:] += width[t]
            overlap = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(
                min(a[3], b[3]) - max(a[1], b[1]), 0.0
            )
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
            out[m, t] = overlap / union
    return out


@kernel
def observe(templates: np.ndarray, rows: np.ndarray, points: np.ndarray, min_scale: float):
    """Replace templates ``rows`` (K,) by ``points`` (K, N, 2), missing nodes moved along; in place.

    Returns each row's shift (K, 2) (median over shared nodes; centroid to centroid when none is shared), new
    scale (K,) (square root of the box area, at least ``min_scale``) and the share of nodes the detection had
    (K,).
    """
    k_rows, n_nodes = rows.shape[0], points.shape[1]
    shift, scale, seen = np.zeros((k_rows, 2)), np.zeros(k_rows), np.zeros(k_rows)
    for k in range(k_rows):
        old, new = templates[rows[k]], points[k]
        for axis in range(2):
            shared = np.array(
                [
                    new[n, axis] - old[n, axis]
                    for n in range(n_nodes)
                    if np.isfinite(new[n, axis]) and np.isfinite(old[n, axis])
                ]
            )
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
        scale[k] = (
            max(np.sqrt((hi[0] - lo[0]) * (hi[1] - lo[1])), min_scale) if np.isfinite(lo[0]) else min_scale
        )
    return shift, scale, seen
