"""Identities from identity (multi-class) models: each instance gets one of the model's classes.

SLEAP trains two kinds (and sleap-nn imports them):
- bottom-up with class maps: a map per class (e.g. "female", "male") instead of part affinity
  fields. Each node's peaks are shared out among the classes, one peak per class, by the class maps'
  values at the peaks (the assignment with the highest total, Hungarian); a class's peaks make its
  instance. No grouping by PAFs is needed: the class is the grouping.
- top-down with class vectors: the centered-instance network also scores each crop for every class.
  A frame's crops are matched to the classes the same way, so no two instances of a frame share one.

The identity is the instance's track id (class index); the tracker is not needed.
"""

from __future__ import annotations

import numpy as np

from posestream.engine.model.instances import Instances
from posestream.engine.model.peaks import PeakCandidates
from posestream.engine.tracking.matching import best_assignment


def class_values(candidates: PeakCandidates, class_maps: np.ndarray, class_stride: int) -> np.ndarray:
    """Each class map's value at each peak candidate's cell.  class_maps (B, n_classes, hc, wc) ->
    (B, n_classes, C, K)"""
    height, width = class_maps.shape[2:]
    rows = np.clip(candidates.rows * candidates.stride // class_stride, 0, height - 1)  # (B, C, K)
    cols = np.clip(candidates.cols * candidates.stride // class_stride, 0, width - 1)
    batch = np.arange(len(class_maps))[:, None, None, None]
    classes = np.arange(class_maps.shape[1])[None, :, None, None]
    return class_maps[batch, classes, rows[:, None], cols[:, None]]


def group_by_class(points: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> Instances:
    """One frame's instances, one per class that got a node.  points (C, K, 2) refined candidates (NaN:
    none), scores (C, K), classes (n_classes, C, K) class-map values at the candidates."""
    n_classes, n_nodes = classes.shape[:2]
    found = np.full((n_classes, n_nodes, 2), np.nan, np.float32)
    found_scores = np.full((n_classes, n_nodes), np.nan, np.float32)
    probabilities = np.full((n_classes, n_nodes), np.nan, np.float32)
    for node in range(n_nodes):
        valid = np.flatnonzero(np.isfinite(points[node, :, 0]))
        if not len(valid):
            continue
        rows, cols = best_assignment(classes[:, node, valid])
        found[rows, node] = points[node, valid[cols]]
        found_scores[rows, node] = scores[node, valid[cols]]
        probabilities[rows, node] = classes[rows, node, valid[cols]]
    present = np.isfinite(found_scores).any(axis=1)
    instances = Instances(found[present], found_scores[present], np.nanmean(found_scores[present], axis=1))
    return instances.with_identities(np.flatnonzero(present), np.nanmean(probabilities[present], axis=1))


def identities_of_crops(
    class_vectors: np.ndarray, frame_of: np.ndarray, has_instance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Class of each crop, matched per frame so that no two crops of a frame share one; -1 where a crop
    has no instance or is left over (more animals than classes).  class_vectors (M, n_classes),
    frame_of (M,), has_instance (M,) -> identities (M,) int32 and their scores (M,) float32 (NaN: none)."""
    identities = np.full(len(class_vectors), -1, np.int32)
    scores = np.full(len(class_vectors), np.nan, np.float32)
    for frame in np.unique(frame_of):
        crops = np.flatnonzero((frame_of == frame) & has_instance)
        if not len(crops):
            continue
        rows, cols = best_assignment(class_vectors[crops])
        identities[crops[rows]] = cols
        scores[crops[rows]] = class_vectors[crops[rows], cols]
    return identities, scores
