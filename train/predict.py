"""Prediction with trained runs in torch, for evaluating a model before it is exported.

Supported combinations: a single-instance run; a bottom-up run; a
centered-instance run alone (crops around the ground-truth anchors, as SLEAP
evaluates it); a centroid run with a centered-instance run (top-down).

Frames go through the exported graph's torch module (``train.graph.ExportGraph``,
``maps`` mode) and the engine's own postprocessing and crop steps, so a run
evaluated here and its exported model run by the engine differ only in the
runtime that executes the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posestream.core.errors import ConfigError
from posestream.engine.model.identity import identities_of_crops
from posestream.engine.model.instances import InstanceBatch, Instances
from posestream.engine.model.postprocess import OutputDecoder, output_names
from posestream.engine.model.topdown import crops_around, instances_from_crops
from posestream.engine.progress import progress_bar
from posestream.engine.types import (
    FramePredictions,
    ModelMetadata,
    ModelType,
    OutputMode,
    Skeleton,
    network_input_shape,
)
from posestream.train.checkpoint import load_checkpoint
from posestream.train.config import TrainConfig, load_config
from posestream.train.labels import LabelSet
from posestream.train.models import PoseNet, build_model
from posestream.train.targets import instance_anchors


@dataclass(frozen=True)
class PredictOptions:
    peak_threshold: float = 0.2  # points whose peak is lower are missing
    batch_size: int = 8
    max_instances: int | None = None  # None: the run's data.max_instances


def load_run(
    run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "best.pt"
) -> tuple[PoseNet, dict, TrainConfig]:
    """A trained model in eval mode, its run.json and its config."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "run.json", checkpoint):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir}: not a training run directory (no {name})")
    config = load_config(config_file=run_dir / "config.yaml")
    run = json.loads((run_dir / "run.json").read_text())
    skeleton = run["skeleton"]
    model = build_model(
        config,
        run["channels"],
        len(skeleton["nodes"]),
        len(skeleton["edges"]),
        len(run.get("class_names", [])),
    )
    fix = f"its config.yaml no longer describes its network; train again or restore {run_dir / 'config.yaml'}"
    load_checkpoint(run_dir / checkpoint, model, device, fix)
    return model.to(device).eval(), run, config


class RunModel:
    """A trained run ready to predict from uint8 frames, as its exported graph would."""

    def __init__(self, run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "best.pt"):
        network, run, config = load_run(run_dir, device, checkpoint)
        self._take(network, run, config, Path(run_dir), torch.device(device))

    @classmethod
    def of_network(
        cls, network: PoseNet, run: dict, config: TrainConfig, run_dir: Path, device: torch.device
    ) -> RunModel:
        """A run still training: its network as it is now (validation between epochs)."""
        model = cls.__new__(cls)
        model._take(network, run, config, run_dir, device)
        return model

    def _take(self, network: PoseNet, run: dict, config: TrainConfig, run_dir: Path, device: torch.device):
        self.network, self.run, self.config, self.run_dir, self.device = network, run, config, run_dir, device
        if self.run.get("model_type") not in [t.value for t in ModelType]:
            raise ConfigError(
                f"{self.run_dir / 'run.json'}: unknown model_type {self.run.get('model_type')!r}; "
                f"expected one of {[t.value for t in ModelType]}"
            )
        self.type = ModelType(self.run["model_type"])
        self.skeleton = Skeleton.from_dict(self.run["skeleton"])
        geometry = self.run["geometry"]
        self.network_shape = tuple(geometry["input_shape"])
        self.input_scale = geometry["input_scale"]
        self.anchor = geometry["anchor"]
        self.crop_size = geometry["crop_size"]
        self.frame_shape = tuple(geometry["frame_shape"]) if geometry.get("frame_shape") else None
        # the maps' strides (class vectors are no map)
        self.map_strides = {h["name"]: h["stride"] for h in self.run["heads"] if h["name"] != "class_vectors"}
        self._graphs: dict[tuple, torch.nn.Module] = {}

    def default_max_peaks(self) -> int:
        """K: 1 for one-instance models, max_instances for centroids, twice that for bottom-up."""
        n = self.config.data.max_instances
        return {ModelType.CENTROID: n, ModelType.BOTTOMUP: 2 * n}.get(self.type, 1)

    def metadata(
        self,
        input_shape: tuple[int, int, int],
        output_mode: OutputMode = OutputMode.MAPS,
        max_peaks: int | None = None,
        precision: str = "fp32",
    ) -> ModelMetadata:
        """The exported model's description for frames (or crops) of ``input_shape`` (H, W, C)."""
        height, width, _ = input_shape
        if self.type is ModelType.CENTERED_INSTANCE:
            network_shape = (height, width)
        else:
            network_shape = self.network_shape_for(height, width)
        anchor = self.skeleton.nodes[self.anchor] if self.anchor is not None else None
        return ModelMetadata(
            model_type=self.type,
            skeleton=self.skeleton,
            input_shape=input_shape,
            input_layout="NHWC",
            input_scale=self.input_scale,
            output_strides=self.map_strides,
            output_shapes={
                name: (network_shape[0] // s, network_shape[1] // s) for name, s in self.map_strides.items()
            },
            sigma=self.config.head.sigma,
            crop_size=(height, width) if self.type is ModelType.CENTERED_INSTANCE else None,
            anchor_part=anchor,
            output_mode=output_mode,
            max_peaks=max_peaks or self.default_max_peaks(),
            max_instances=self.config.data.max_instances,
            precision=precision,
            source_run=str(self.run_dir.resolve()),
            config_hash=self.run.get("config_hash", ""),
            class_names=tuple(self.run.get("class_names", ())),
        )

    def network_shape_for(self, height: int, width: int) -> tuple[int, int]:
        """Network input (h, w) for frames (height, width): scaled, rounded up to the max stride."""
        return network_input_shape((height, width), self.input_scale, self.config.backbone.max_stride)

    def graph(
        self, metadata: ModelMetadata, network: torch.nn.Module | None = None, half: bool = False
    ) -> torch.nn.Module:
        """The exported graph's torch module for ``metadata`` around ``network`` (default: the run's own;
        ``half`` converts it in place)."""
        from posestream.train.graph import ExportGraph

        height, width, _ = metadata.input_shape
        network_shape = (
            (height, width)
            if self.type is ModelType.CENTERED_INSTANCE
            else self.network_shape_for(height, width)
        )
        network = self.network if network is None else network
        graph = ExportGraph(network, metadata, network_shape, half=half, class_logits=True)
        return graph.to(self.device).eval()

    @torch.no_grad()
    def outputs(self, frames: np.ndarray) -> tuple[ModelMetadata, dict[str, np.ndarray]]:
        """Maps-mode outputs for a uint8 batch (N, H, W, C), with the metadata that describes them."""
        key = frames.shape[1:]
        if key not in self._graphs:
            metadata = self.metadata(key)
            self._graphs[key] = (metadata, self.graph(metadata))
        metadata, graph = self._graphs[key]
        result = graph(torch.from_numpy(np.ascontiguousarray(frames)).to(self.device))
        return metadata, {name: r.cpu().numpy() for name, r in zip(output_names(metadata), result)}

    def instances(self, frames: np.ndarray, options: PredictOptions) -> list[Instances]:
        return self.decoded(frames, options)[0]

    def decoded(self, frames: np.ndarray, options: PredictOptions) -> tuple[list[Instances], dict]:
        """Each frame's instances and the raw outputs they came from (an identity model's class vectors)."""
        metadata, outputs = self.outputs(frames)
        decoder = OutputDecoder(metadata, options.peak_threshold, options.max_instances)
        return decoder.decode(outputs), outputs

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.run.get("class_names", ()))


class ExportedRun:
    """An exported model directory run by the engine (onnxruntime), with RunModel's prediction interface,
    so ``posestream evaluate MODEL_DIR`` scores exactly what the engine will produce."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "cpu"):
        from posestream.engine.model.inference import ExportedModel

        self.model = ExportedModel(model_dir, device)
        meta = self.model.metadata
        self.run_dir = Path(model_dir)
        self.type, self.skeleton = meta.model_type, meta.skeleton
        self.anchor = meta.skeleton.nodes.index(meta.anchor_part) if meta.anchor_part else None
        self.crop_size = meta.crop_size[0] if meta.crop_size else None
        source = Path(meta.source_run) / "run.json"
        self.run = json.loads(source.read_text()) if source.exists() else {}

    def instances(self, frames: np.ndarray, options: PredictOptions) -> list[Instances]:
        return self.decoded(frames, options)[0]

    def decoded(self, frames: np.ndarray, options: PredictOptions) -> tuple[list[Instances], dict]:
        """Each frame's instances and the raw outputs they came from (an identity model's class vectors)."""
        decoder = OutputDecoder(self.model.metadata, options.peak_threshold, options.max_instances)
        outputs = self.model.backend.run(frames)
        return decoder.decode(outputs), outputs

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.metadata.class_names


def open_model(path: str | os.PathLike, device: str = "cpu") -> RunModel | ExportedRun:
    """A training run (RUN_DIR with run.json) or an exported model (MODEL_DIR with metadata.json)."""
    if (Path(path) / "metadata.json").exists():
        return ExportedRun(path, device)
    return RunModel(path, device)


def predict(
    runs: list[RunModel | ExportedRun],
    labels: LabelSet,
    indices: list[int],
    options: PredictOptions = PredictOptions(),
    progress: bool = False,
) -> dict[int, FramePredictions]:
    """Predictions for labelled frames ``indices`` of ``labels``, keyed by frame index."""
    types = sorted(r.type.value for r in runs)
    by_type = {r.type: r for r in runs}
    if types in (["single_instance"], ["bottomup"]):
        (run,) = runs

        def fn(chunk):
            return run.instances(_frames(labels, chunk), options)
    elif types == ["centered_instance"]:

        def fn(chunk):
            return _centered_on_truth(by_type[ModelType.CENTERED_INSTANCE], labels, chunk, options)
    elif types == ["centered_instance", "centroid"]:

        def fn(chunk):
            return _top_down(
                by_type[ModelType.CENTROID], by_type[ModelType.CENTERED_INSTANCE], labels, chunk, options
            )
    else:
        raise ConfigError(
            f"cannot predict with runs of types {types}: give one single_instance, bottomup or "
            "centered_instance run, or a centroid run with a centered_instance run"
        )
    results = {}
    with progress_bar(len(indices), "predict", enabled=progress) as advance:
        for chunk in _chunks(labels, indices, options.batch_size):
            for i, found in zip(chunk, fn(chunk)):
                frame_idx = labels.frames[i].frame_idx
                results[frame_idx] = FramePredictions(
                    frame_idx, found.points, found.point_scores, found.instance_scores, found.identities
                )
            advance(len(chunk))
    return results


def _chunks(labels: LabelSet, indices: list[int], size: int) -> list[list[int]]:
    """Consecutive runs of at most ``size`` labelled frames of one image shape."""
    chunks: list[list[int]] = []
    for i in indices:
        if chunks and len(chunks[-1]) < size and labels.image(chunks[-1][0]).shape == labels.image(i).shape:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def _frames(labels: LabelSet, chunk: list[int]) -> np.ndarray:
    return np.stack([labels.image(i) for i in chunk])  # (N, H, W, C) uint8


def _crop_instances(run: RunModel, frames: np.ndarray, anchors: list[np.ndarray], options) -> list[Instances]:
    """Centered-instance predictions around ``anchors`` (per frame: (n, 2) in frame pixels); an identity
    model's crops get their classes, matched per frame as the engine matches them."""
    crops, origins, frame_of = crops_around(frames, anchors, (run.crop_size, run.crop_size))
    found: list[Instances] = []
    vectors = []  # (crops, n_classes) per batch of crops, for identity models
    for start in range(0, len(crops), options.batch_size):
        instances, outputs = run.decoded(crops[start : start + options.batch_size], options)
        found.extend(instances)
        vectors += [outputs["class_vectors"]] if "class_vectors" in outputs else []
    batch = InstanceBatch.of(found, run.skeleton.n_nodes)
    if vectors:
        has_instance = batch.counts > 0
        ids, scores = identities_of_crops(np.concatenate(vectors), frame_of, has_instance)
        batch = InstanceBatch(
            batch.instances.with_identities(ids[has_instance], scores[has_instance]), batch.counts
        )
    return instances_from_crops(batch, origins, frame_of, len(frames)).split()


def _centered_on_truth(run: RunModel, labels: LabelSet, chunk: list[int], options) -> list[Instances]:
    anchors = []
    for i in chunk:
        a = instance_anchors(labels.frames[i].points, run.anchor)
        anchors.append(a[np.isfinite(a).all(axis=1)])
    return _crop_instances(run, _frames(labels, chunk), anchors, options)


def _top_down(
    centroid: RunModel, centered: RunModel, labels: LabelSet, chunk: list[int], options
) -> list[Instances]:
    frames = _frames(labels, chunk)
    anchors = [found.points[:, 0] for found in centroid.instances(frames, options)]
    return _crop_instances(centered, frames, anchors, options)
