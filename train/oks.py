"""Object keypoint similarity (OKS, as COCO defines it): how alike two poses of one skeleton are, 0 to 1.

The one similarity the pose metrics (``metrics``) and the tracking metrics (``tracking_metrics``) share.
"""

from __future__ import annotations

import numpy as np

OKS_STDDEV = 0.025
"""The per-node standard deviation, as a fraction of the animal's size (SLEAP's default)."""


def oks_matrix(truth: np.ndarray, predicted: np.ndarray, stddev: float = OKS_STDDEV) -> np.ndarray:
    """OKS of every (ground truth, prediction) pair.  truth (G, N, 2), predicted (P, N, 2) -> (G, P)"""
    if len(truth) == 0 or len(predicted) == 0:
        return np.zeros((len(truth), len(predicted)))
    visible = np.isfinite(truth).all(axis=-1)  # (G, N)
    with np.errstate(invalid="ignore"):
        lo = np.nanmin(np.where(visible[..., None], truth, np.nan), axis=1)
        hi = np.nanmax(np.where(visible[..., None], truth, np.nan), axis=1)
    area = np.nan_to_num(np.prod(hi - lo, axis=-1), nan=0.0)  # (G,)
    area = np.maximum(area, 1.0)
    d2 = ((truth[:, None] - predicted[None]) ** 2).sum(axis=-1)  # (G, P, N)
    similarity = np.exp(-d2 / (2 * area[:, None, None] * (2 * stddev) ** 2))
    similarity = np.where(visible[:, None] & np.isfinite(similarity), similarity, 0.0)
    return similarity.sum(axis=-1) / np.maximum(visible.sum(axis=-1), 1)[:, None]
