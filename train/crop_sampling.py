"""Crop sampling (DeepLabCut's): a whole-frame model trains on ``augment.crop_size`` squares cut from its
frames, so a step costs a crop's pixels rather than a frame's, and crops go where the animals are.

Where a crop is centred (``augment.crop_sampling``):

- ``uniform``: anywhere in the frame;
- ``keypoint``: on a labelled keypoint drawn at random;
- ``density``: on a keypoint drawn with weight rising with the keypoints around it (within half a crop), so
  crowded places (animals together) come up more often;
- ``hybrid``: one of the three above, drawn per example.

A share ``augment.crop_ratio`` of the examples is placed by the method, the rest uniformly (every example is
a crop: a batch has one size). The drawn keypoint then moves off the centre by up to ``augment.max_shift``
of the crop side on each axis (and by ``augment.translate``), so a model does not learn that an animal is
always in the middle; with ``max_shift`` < 0.5 the drawn keypoint stays inside its crop. Inference runs on
whole frames (the networks are fully convolutional).
"""

from __future__ import annotations

import numpy as np

from posestream.train.config import AugmentConfig


def crop_centre(
    points: np.ndarray, frame_shape: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Where a crop is centred (x, y) in frame pixels.  points: (n_instances, n_nodes, 2) in frame pixels
    (NaN: unlabelled); frame_shape: (height, width)."""
    method = cfg.crop_sampling
    if method == "hybrid":
        method = ("uniform", "keypoint", "density")[rng.integers(3)]
    keypoints = points.reshape(-1, 2)
    keypoints = keypoints[np.isfinite(keypoints).all(axis=1)]  # (K, 2)
    if method == "uniform" or not len(keypoints) or rng.random() >= cfg.crop_ratio:
        height, width = frame_shape
        return rng.uniform((0, 0), (width - 1, height - 1))
    if method == "keypoint":
        return keypoints[rng.integers(len(keypoints))]
    return keypoints[rng.choice(len(keypoints), p=density_weights(keypoints, cfg.crop_size / 2))]


def density_weights(keypoints: np.ndarray, radius: float) -> np.ndarray:
    """Each keypoint's chance to centre a crop: the number of keypoints within ``radius`` of it (itself
    included), normalised.  keypoints (K, 2) -> (K,)"""
    distances = np.linalg.norm(keypoints[:, None] - keypoints[None], axis=-1)  # (K, K)
    counts = (distances <= radius).sum(axis=1).astype(np.float64)
    return counts / counts.sum()


def centre_shift(cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """How far the sampled point lands from the crop's centre (dx, dy), in network pixels."""
    reach = cfg.max_shift * cfg.crop_size
    return rng.uniform(-reach, reach, size=2) if reach else np.zeros(2)
