"""Similarity of each detection to each track's predicted pose, in [0, 1] (1: the same place).

Every measure compares only the nodes the detection has (a dropped node neither helps nor hurts) and
takes each track's kernel width w in pixels (the tracker scales it by the track's size, and widens it
the longer the track has been lost), so one gate fits small and large animals alike:

- ``oks``: mean over the detection's nodes of exp(-d^2 / (2 w^2)), d the node's distance to the
  prediction (COCO's keypoint similarity, with the track's scale);
- ``centroid``: the same kernel on the distance between the centroids of the nodes both poses have;
- ``iou``: intersection over union of the two poses' boxes over those nodes, each padded by w (a box
  of one node is a square, not a point).
"""

from __future__ import annotations

import numba
import numpy as np


def similarity_matrix(kind: str, detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """detections (M, N, 2), predicted (T, N, 2), kernel width per track (T,) pixels -> (M, T).

    numba kernels (a frame's few instances make numpy's per-call overhead the cost); float64 arrays."""
    kernel = {"oks": oks, "centroid": centroid, "iou": iou}[kind]
    return kernel(np.ascontiguousarray(detections, np.float64), np.ascontiguousarray(predicted, np.float64),
                  np.ascontiguousarray(width, np.float64))  # fmt: skip


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def iou(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Box IoU over the nodes both poses have, boxes padded by the width.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
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
            overlap = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
            out[m, t] = overlap / union
    return out


def scale_of(poses: np.ndarray, min_scale: float) -> np.ndarray:
    """Square root of each pose's bounding-box area, at least ``min_scale``.  (T, N, 2) -> (T,)"""
    with np.errstate(invalid="ignore"):
        extent = np.fmax.reduce(poses, axis=1) - np.fmin.reduce(poses, axis=1)  # (T, 2); NaN for a pose with no node
    return np.fmax(np.sqrt(extent[:, 0] * extent[:, 1]), min_scale)


def centroids(poses: np.ndarray) -> np.ndarray:
    """Mean of each pose's nodes (NaN for a pose with none).  (T, N, 2) -> (T, 2)"""
    shown = np.isfinite(poses[..., 0]).sum(axis=1)[:, None]  # (T, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(poses, axis=1) / shown
