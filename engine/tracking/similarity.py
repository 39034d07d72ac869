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

import numpy as np


def similarity_matrix(kind: str, detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """detections (M, N, 2), predicted (T, N, 2), kernel width per track (T,) pixels -> (M, T)."""
    if kind == "oks":
        return oks(detections, predicted, width)
    if kind == "centroid":
        return centroid(detections, predicted, width)
    return iou(detections, predicted, width)


def oks(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Keypoint similarity.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
    d2 = np.square(detections[:, None] - predicted[None]).sum(axis=-1)  # (M, T, N), NaN where either lacks a node
    kernel = np.exp(-d2 / (2 * np.square(width))[None, :, None])
    shown = np.isfinite(detections[..., 0]).sum(axis=-1)  # (M,)
    return np.nansum(kernel, axis=-1) / np.maximum(shown, 1)[:, None]


def centroid(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Centroid distance kernel over the nodes both poses have.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
    offsets = detections[:, None] - predicted[None]  # (M, T, N, 2)
    shared = np.isfinite(offsets[..., 0])  # (M, T, N)
    with np.errstate(invalid="ignore"):
        shift = np.nansum(offsets, axis=2) / shared.sum(axis=2)[..., None]  # (M, T, 2); NaN when nothing shared
    similarity = np.exp(-np.square(shift).sum(axis=-1) / (2 * np.square(width))[None])
    return np.nan_to_num(similarity, nan=0.0)


def iou(detections: np.ndarray, predicted: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Box IoU over the nodes both poses have, boxes padded by the width.  (M, N, 2), (T, N, 2), (T,) -> (M, T)"""
    shared = np.isfinite(detections[:, None, :, 0]) & np.isfinite(predicted[None, :, :, 0])  # (M, T, N)
    pad = width[None, :, None]  # (1, T, 1)
    a_lo, a_hi = _box(np.broadcast_to(detections[:, None], shared.shape + (2,)), shared)  # (M, T, 2) each
    b_lo, b_hi = _box(np.broadcast_to(predicted[None], shared.shape + (2,)), shared)
    a_lo, a_hi, b_lo, b_hi = a_lo - pad, a_hi + pad, b_lo - pad, b_hi + pad
    overlap = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0, None).prod(axis=-1)
    union = (a_hi - a_lo).prod(axis=-1) + (b_hi - b_lo).prod(axis=-1) - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(overlap / union, nan=0.0)


def _box(points: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the masked points.  (M, T, N, 2), (M, T, N) -> (M, T, 2), (M, T, 2); NaN if none."""
    masked = np.where(mask[..., None], points, np.nan)
    with np.errstate(invalid="ignore"):
        empty = ~mask.any(axis=-1)[..., None]
        lo = np.where(empty, np.nan, np.fmin.reduce(masked, axis=2))
        hi = np.where(empty, np.nan, np.fmax.reduce(masked, axis=2))
    return lo, hi


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
