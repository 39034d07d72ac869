"""Prediction with trained runs in torch, for evaluating a model before it is exported.

Supported combinations: a single-instance run; a bottom-up run; a
centered-instance run alone (crops around the ground-truth anchors, as SLEAP
evaluates it); a centroid run with a centered-instance run (top-down).
Frames go through the same geometry as in training: scaled by the input scale
from the top-left corner, or cropped around an anchor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from posestream.engine.errors import ConfigError
from posestream.engine.paf_grouping import GroupingConfig, group_instances
from posestream.engine.peaks import global_peaks, local_peaks
from posestream.engine.progress import progress_bar
from posestream.engine.types import FramePredictions, ModelType, Skeleton

from .augment import linear, translation, warp_image
from .labels import LabelSet
from .targets import instance_anchors
from .trainer import load_run


@dataclass(frozen=True)
class PredictOptions:
    peak_threshold: float = 0.2  # points whose peak is lower are missing
    batch_size: int = 8
    max_instances: int | None = None  # None: the run's data.max_instances


class RunModel:
    """A trained run ready to predict maps from frames."""

    def __init__(self, run_dir: str | os.PathLike, device: str = "cpu"):
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.model, self.run, self.config = load_run(run_dir, device)
        self.type = ModelType(self.run["model_type"])
        self.skeleton = Skeleton.from_dict(self.run["skeleton"])
        geometry = self.run["geometry"]
        self.input_shape = tuple(geometry["input_shape"])
        self.input_scale = geometry["input_scale"]
        self.anchor = geometry["anchor"]
        self.crop_size = geometry["crop_size"]
        self.heads = self.run["heads"]

    @torch.no_grad()
    def maps(self, images: list[np.ndarray], matrices: list[np.ndarray]) -> list[np.ndarray]:
        """Run the network on images (H, W, C) warped by ``matrices``; one (B, C, h, w) array per head."""
        batch = torch.stack([
            warp_image(torch.from_numpy(img).permute(2, 0, 1).float(), m, self.input_shape) for img, m in zip(images, matrices)
        ]) / 255.0  # fmt: skip
        outputs = self.model(batch.to(self.device))
        return [o.float().cpu().numpy() for o in outputs]

    def frame_matrix(self) -> np.ndarray:
        return linear(self.input_scale, 0, 0, self.input_scale)

    def crop_matrix(self, anchor: np.ndarray) -> np.ndarray:
        centre = (self.crop_size - 1) / 2
        return translation(centre - anchor[0], centre - anchor[1])


def predict(
    runs: list[RunModel], labels: LabelSet, indices: list[int], options: PredictOptions = PredictOptions(),
    progress: bool = False,
) -> dict[int, FramePredictions]:  # fmt: skip
    """Predictions for labelled frames ``indices`` of ``labels``, keyed by frame index."""
    types = sorted(r.type.value for r in runs)
    by_type = {r.type: r for r in runs}
    if types == ["single_instance"]:
        fn = _single_instance
    elif types == ["bottomup"]:
        fn = _bottomup
    elif types == ["centered_instance"]:
        fn = _centered_on_truth
    elif types == ["centered_instance", "centroid"]:
        fn = _top_down
    else:
        raise ConfigError(
            f"cannot predict with runs of types {types}: give one single_instance, bottomup or "
            "centered_instance run, or a centroid run with a centered_instance run"
        )
    results = {}
    with progress_bar(len(indices), "predict", enabled=progress) as advance:
        for start in range(0, len(indices), options.batch_size):
            chunk = indices[start : start + options.batch_size]
            for i, prediction in zip(chunk, fn(by_type, labels, chunk, options)):
                results[labels.frames[i].frame_idx] = prediction
            advance(len(chunk))
    return results


def _instance(frame_idx: int, points: np.ndarray, scores: np.ndarray, instance_scores=None) -> FramePredictions:
    """points (N, n_nodes, 2), scores (N, n_nodes) -> FramePredictions, instance score = mean point score."""
    if instance_scores is None:
        with np.errstate(invalid="ignore"):
            instance_scores = np.nan_to_num(np.nanmean(np.where(np.isnan(points[..., 0]), np.nan, scores), axis=1))
    return FramePredictions(frame_idx, points, np.where(np.isnan(points[..., 0]), np.nan, scores), instance_scores)


def _single_instance(runs, labels, chunk, options) -> list[FramePredictions]:
    run = runs[ModelType.SINGLE_INSTANCE]
    (maps,) = run.maps([labels.image(i) for i in chunk], [run.frame_matrix()] * len(chunk))
    points, scores = global_peaks(maps, run.heads[0]["stride"], options.peak_threshold)
    points /= run.input_scale
    return [_instance(labels.frames[i].frame_idx, points[k : k + 1], scores[k : k + 1]) for k, i in enumerate(chunk)]


def _bottomup(runs, labels, chunk, options) -> list[FramePredictions]:
    run = runs[ModelType.BOTTOMUP]
    maps, pafs = run.maps([labels.image(i) for i in chunk], [run.frame_matrix()] * len(chunk))
    strides = {h["name"]: h["stride"] for h in run.heads}
    sample, channel, points, scores = local_peaks(maps, strides["confmaps"], options.peak_threshold)
    grouping = GroupingConfig(max_edge_length=0.5 * max(run.input_shape),
                              max_instances=options.max_instances or run.config.data.max_instances)  # fmt: skip
    edges = np.array(run.skeleton.edges, np.int64).reshape(-1, 2)
    out = []
    for k, i in enumerate(chunk):
        mine = sample == k
        node_peaks = [points[mine & (channel == n)] for n in range(run.skeleton.n_nodes)]
        node_scores = [scores[mine & (channel == n)] for n in range(run.skeleton.n_nodes)]
        inst_points, inst_scores, totals = group_instances(node_peaks, node_scores, pafs[k], strides["pafs"], edges, grouping)
        out.append(_instance(labels.frames[i].frame_idx, inst_points / run.input_scale, inst_scores, totals))
    return out


def _crops(run: RunModel, labels: LabelSet, chunk: list[int], anchors: list[np.ndarray], options) -> list[FramePredictions]:
    """Centered-instance predictions around given anchors (per frame: (n, 2) in frame pixels)."""
    jobs = [(k, a) for k, frame_anchors in enumerate(anchors) for a in frame_anchors]
    found = [([], []) for _ in chunk]
    for start in range(0, len(jobs), options.batch_size):
        part = jobs[start : start + options.batch_size]
        (maps,) = run.maps([labels.image(chunk[k]) for k, _ in part], [run.crop_matrix(a) for _, a in part])
        points, scores = global_peaks(maps, run.heads[0]["stride"], options.peak_threshold)
        centre = (run.crop_size - 1) / 2
        for (k, anchor), p, s in zip(part, points, scores):
            found[k][0].append(p - centre + anchor)
            found[k][1].append(s)
    n_nodes = run.skeleton.n_nodes
    return [
        _instance(labels.frames[i].frame_idx,
                  np.array(p, np.float32).reshape(-1, n_nodes, 2), np.array(s, np.float32).reshape(-1, n_nodes))
        for i, (p, s) in zip(chunk, found)
    ]  # fmt: skip


def _centered_on_truth(runs, labels, chunk, options) -> list[FramePredictions]:
    run = runs[ModelType.CENTERED_INSTANCE]
    anchors = []
    for i in chunk:
        a = instance_anchors(labels.frames[i].points, run.anchor)
        anchors.append(a[np.isfinite(a).all(axis=1)])
    return _crops(run, labels, chunk, anchors, options)


def _top_down(runs, labels, chunk, options) -> list[FramePredictions]:
    centroid, centered = runs[ModelType.CENTROID], runs[ModelType.CENTERED_INSTANCE]
    (maps,) = centroid.maps([labels.image(i) for i in chunk], [centroid.frame_matrix()] * len(chunk))
    sample, _, points, scores = local_peaks(maps, centroid.heads[0]["stride"], options.peak_threshold)
    limit = options.max_instances or centroid.config.data.max_instances
    anchors = [points[sample == k][:limit] / centroid.input_scale for k in range(len(chunk))]
    return _crops(centered, labels, chunk, anchors, options)
