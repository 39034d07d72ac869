"""From a model's raw outputs to instances, for either export output mode.

``maps`` models hand over confidence maps (and PAFs): candidates are found
here. ``peaks`` models hand over the candidates themselves (values, flat cell
indices, 3x3 patches) and, for bottom-up, the PAF samples along candidate
pairs. Both then go through the same refinement and grouping, so they give
the same poses.

Output names (the ONNX graph's, see ``posestream.train.graph``):
  maps:  "confmaps" (B, C, h, w), "pafs" (B, 2E, hp, wp), and for models with a learned offset head
         (SLEAP's ``OffsetRefinementHead``) "offsets" (B, 2C, h, w): (dx, dy) of each node in map cells;
         identity models: "class_maps" (B, n_classes, hc, wc) instead of "pafs" (bottom-up), or
         "class_vectors" (B, n_classes) (centered-instance)
  peaks: "peak_values" (B, C, K), "peak_indices" (B, C, K), "peak_patches" (B, C, K, 3, 3),
         "paf_dots" (B, E, K, K, S); identity models: "peak_classes" (B, n_classes, C, K), the class maps at
         the candidates, instead of the PAF samples (bottom-up), or "class_vectors" (centered-instance)
"""

from __future__ import annotations

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.model.identity import class_values, group_by_class
from posestream.engine.model.instances import InstanceBatch, Instances
from posestream.engine.model.paf_grouping import GroupingConfig, group_batch, pair_dots
from posestream.engine.model.peaks import PeakCandidates, find_candidates, refine_candidates
from posestream.engine.types import ModelMetadata, ModelType, OutputMode


def network_outputs(metadata: ModelMetadata) -> list[str]:
    """Names of the network's own outputs (a maps-mode graph's), in order."""
    bottomup = metadata.model_type is ModelType.BOTTOMUP
    names = ["confmaps"]
    if bottomup:
        names.append("class_maps" if metadata.identities else "pafs")
    names += ["offsets"] if "offsets" in metadata.output_strides else []
    names += ["class_vectors"] if metadata.identities and not bottomup else []
    return names


def output_names(metadata: ModelMetadata) -> list[str]:
    """Names of an exported graph's outputs, in order."""
    if metadata.output_mode is OutputMode.MAPS:
        return network_outputs(metadata)
    names = ["peak_values", "peak_indices", "peak_patches"]
    if metadata.model_type is ModelType.BOTTOMUP:
        names.append("peak_classes" if metadata.identities else "paf_dots")
    elif metadata.identities:
        names.append("class_vectors")
    return names


class OutputDecoder:
    """Turns one model's batch outputs into per-sample ``Instances`` in frame (or crop) pixels."""

    def __init__(
        self, metadata: ModelMetadata, peak_threshold: float | None = None, max_instances: int | None = None
    ):
        self.metadata = metadata
        self.threshold = metadata.peak_threshold if peak_threshold is None else float(peak_threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"peak threshold must be within [0, 1], got {self.threshold}")
        self.max_instances = max_instances or metadata.max_instances
        self.edges = np.array(metadata.skeleton.edges, np.int64).reshape(-1, 2)
        height, width = metadata.output_shapes["confmaps"]
        network_size = max(height, width) * metadata.output_strides["confmaps"]
        self.grouping = GroupingConfig(max_edge_length=0.5 * network_size, max_instances=self.max_instances)

    def candidates(self, outputs: dict[str, np.ndarray]) -> tuple[PeakCandidates, np.ndarray | None]:
        """Peak candidates (B, C, K) and, for bottom-up, PAF samples (B, E, K, K, S)."""
        meta, stride = self.metadata, self.metadata.output_strides["confmaps"]
        if meta.output_mode is OutputMode.PEAKS:
            candidates = PeakCandidates.from_flat(
                outputs["peak_values"],
                outputs["peak_indices"],
                outputs["peak_patches"],
                meta.output_shapes["confmaps"],
                stride,
            )
            return candidates, outputs.get("paf_dots")
        candidates = find_candidates(outputs["confmaps"], meta.max_peaks, stride, floor=self.threshold)
        if meta.model_type is not ModelType.BOTTOMUP or meta.identities:  # identity models group by class
            return candidates, None
        dots = pair_dots(
            candidates,
            outputs["pafs"],
            self.edges,
            meta.output_strides["pafs"],
            meta.paf_samples,
            floor=self.threshold,
        )
        return candidates, dots

    def decode(self, outputs: dict[str, np.ndarray]) -> list[Instances]:
        """One ``Instances`` per batch sample (see ``decode_batch``)."""
        return self.decode_batch(outputs).split()

    def decode_batch(self, outputs: dict[str, np.ndarray]) -> InstanceBatch:
        """The batch's instances, sample after sample, in frame pixels (crop pixels for centered-instance).

        Centroid models give one-node instances: the anchors, best first.
        """
        candidates, dots = self.candidates(outputs)
        integral = (
            self.metadata.refinement == "integral" and "confmaps" in outputs and "offsets" not in outputs
        )
        maps = outputs["confmaps"] if integral else None
        points, scores = refine_candidates(candidates, self.threshold, maps)  # (B, C, K, 2), (B, C, K)
        if "offsets" in outputs:
            points = offset_points(candidates, outputs["offsets"], points)
        points /= self.metadata.input_scale
        kind = self.metadata.model_type
        if kind is ModelType.CENTROID:
            return InstanceBatch.of(
                [_anchors(p[0], s[0], self.max_instances) for p, s in zip(points, scores)], 1
            )
        if kind is ModelType.BOTTOMUP and self.metadata.identities:
            classes = outputs.get("peak_classes")  # peaks mode: read at the candidates in the graph
            if classes is None:
                classes = class_values(
                    candidates, outputs["class_maps"], self.metadata.output_strides["class_maps"]
                )
            return InstanceBatch.of(
                [group_by_class(p, s, c) for p, s, c in zip(points, scores, classes)],
                self.metadata.skeleton.n_nodes,
            )
        if kind is ModelType.BOTTOMUP:
            grouped = group_batch(points, scores, candidates.cell_points(), dots, self.edges, self.grouping)
            found, point_scores, instance_scores, counts = grouped  # (B, M, C, 2), (B, M, C), (B, M), (B,)
            rows = np.arange(found.shape[1])[None, :] < counts[:, None]  # (B, M): the instances found
            return InstanceBatch(
                Instances(found[rows], point_scores[rows], instance_scores[rows]), counts.astype(np.int64)
            )
        return _singles(points[:, :, 0], scores[:, :, 0])


def offset_points(candidates: PeakCandidates, offsets: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """Candidates placed by a learned offset head instead: (cell + offset) x stride, NaN where ``refined``
    has no point.  offsets: (B, 2C, h, w), channel 2c = dx and 2c + 1 = dy of node c, in cells."""
    batch, channels, k = candidates.values.shape
    b = np.arange(batch)[:, None, None]
    c = np.arange(channels)[None, :, None]
    dx = offsets[b, 2 * c, candidates.rows, candidates.cols]  # (B, C, K)
    dy = offsets[b, 2 * c + 1, candidates.rows, candidates.cols]
    points = (
        np.stack([candidates.cols + dx, candidates.rows + dy], axis=-1).astype(np.float32) * candidates.stride
    )
    return np.where(np.isnan(refined), np.nan, points).astype(np.float32)


def _singles(points: np.ndarray, scores: np.ndarray) -> InstanceBatch:
    """The one instance of each frame or crop from its nodes' best peaks, points (B, n_nodes, 2) and scores
    (B, n_nodes); none where no node is found."""
    found = ~np.isnan(points[:, :, 0])  # (B, n_nodes)
    point_scores = np.where(found, scores, np.nan).astype(np.float32)
    nodes_found = found.sum(axis=1)  # (B,)
    means = (np.where(found, point_scores, 0.0).sum(axis=1) / np.maximum(nodes_found, 1)).astype(np.float32)
    present = nodes_found > 0
    return InstanceBatch(
        Instances(points[present], point_scores[present], means[present]), present.astype(np.int64)
    )


def _anchors(points: np.ndarray, scores: np.ndarray, limit: int) -> Instances:
    """Centroid candidates (K, 2) -> up to ``limit`` one-node instances, best first."""
    found = ~np.isnan(points[:, 0])
    points, scores = points[found][:limit], scores[found][:limit]
    return Instances(points[:, None], scores[:, None].astype(np.float32), scores.astype(np.float32))
