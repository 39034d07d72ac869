"""Comparing an imported model with SLEAP's own predictions (``labels_pr.*.slp`` beside SLEAP's models).

SLEAP predicted those files with its own conventions; to compare networks, not conventions, the frames
are cut as SLEAP cuts them (``sleap_crops``), and each of SLEAP's points is paired with ours.
"""

from __future__ import annotations

import numpy as np


def bbox_center(points: np.ndarray) -> np.ndarray:
    """SLEAP's centroid of an instance without an anchor part: the middle of its visible points' box.  #
    (2,)"""
    visible = points[~np.isnan(points).any(axis=1)]
    return (visible.min(axis=0) + visible.max(axis=0)) / 2


def sleap_crops(image: np.ndarray, centers: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """SLEAP's crops (M, size, size, C) of one frame around ``centers`` and the offsets (M, 2) that move
    their points back (``engine.topdown``'s "sleap" convention)."""
    from posestream.engine.model.topdown import crops_around

    crops, offsets, _ = crops_around(image[None], [np.asarray(centers, np.float64)], (size, size), "sleap")
    return crops, offsets


def nearest_distances(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """For each of their points (P, 2), the distance to our nearest point (Q, 2).  # (P,)"""
    theirs = theirs[~np.isnan(theirs).any(axis=1)]
    if not len(ours):
        return np.full(len(theirs), np.inf)
    return np.nanmin(np.linalg.norm(theirs[:, None] - ours[None], axis=-1), axis=1)


def tensorflow_differences(folder) -> dict[str, float]:
    """Max |ours - TensorFlow's| of each output of a SLEAP 1.x folder's network on the zero input whose
    outputs TensorFlow stored in ``dummy_activations.h5`` (NHWC, after the heads' activations)."""
    import json
    from pathlib import Path

    import h5py
    import torch

    from posestream.export.importers.keras_graph import load_keras_h5

    folder = Path(folder)
    graph = load_keras_h5(folder / "best_model.h5").eval()
    with h5py.File(folder / "dummy_activations.h5", "r") as f:
        metadata = json.loads(f["metadata"][()])
        n, h, w, c = metadata["input_shape"]
        with torch.no_grad():
            outputs = graph(torch.zeros((n, c, h, w)))
        differences = {}
        for output in metadata["outputs"]:
            name = output["dataset_name"]
            mine = outputs[name].numpy()
            mine = mine.transpose(0, 2, 3, 1) if mine.ndim == 4 else mine
            stored = np.asarray(f[name])
            differences[name] = (
                float(np.abs(mine - stored).max()) if mine.shape == stored.shape else float("inf")
            )
    return differences
