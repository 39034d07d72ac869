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

from posestream.engine import kernels


def similarity_matrix(
    kind: str, detections: np.ndarray, predicted: np.ndarray, width: np.ndarray
) -> np.ndarray:
    """detections (M, N, 2), predicted (T, N, 2), kernel width per track (T,) pixels -> (M, T).

    Compiled kernels (engine/kernels): a frame's few instances make numpy's per-call overhead the cost."""
    kernel = getattr(kernels.load(), kind)
    return kernel(
        np.ascontiguousarray(detections, np.float64),
        np.ascontiguousarray(predicted, np.float64),
        np.ascontiguousarray(width, np.float64),
    )


def scale_of(poses: np.ndarray, min_scale: float) -> np.ndarray:
    """Square root of each pose's bounding-box area, at least ``min_scale``.  (T, N, 2) -> (T,)"""
    with np.errstate(invalid="ignore"):
        # (T, 2); NaN for a pose with no node
        extent = np.fmax.reduce(poses, axis=1) - np.fmin.reduce(poses, axis=1)
    return np.fmax(np.sqrt(extent[:, 0] * extent[:, 1]), min_scale)


def centroids(poses: np.ndarray) -> np.ndarray:
    """Mean of each pose's nodes (NaN for a pose with none).  (T, N, 2) -> (T, 2)"""
    shown = np.isfinite(poses[..., 0]).sum(axis=1)[:, None]  # (T, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(poses, axis=1) / shown
