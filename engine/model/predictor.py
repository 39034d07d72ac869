"""One pose model made of one or two exported model directories.

- single-instance, or bottom-up: one directory;
- top-down: a centroid and a centered-instance directory, in any order (their
  metadata says which is which);
- a centroid directory alone: one point per animal, its anchor (a one-node
  skeleton named after the anchor part, or "centroid"), for counting and
  tracking animals where poses are not needed.

Work is split the way the pipeline runs it: ``infer`` (the inference stage:
networks, and for top-down the centroid peaks and the crops between the two
networks) and ``postprocess`` (the postprocessing pool: peaks, refinement,
grouping, crops back to frame pixels).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.model.backends import Pending
from posestream.engine.model.identity import identities_of_crops
from posestream.engine.model.inference import ExportedModel
from posestream.engine.model.instances import InstanceBatch
from posestream.engine.model.model_dir import load_model_dir
from posestream.engine.model.topdown import crops_around, instances_from_crops
from posestream.engine.threads import ThreadBudget, budget, network_us_per_frame
from posestream.engine.types import ModelType, Skeleton


@dataclass
class RawBatch:
    """What the inference stage hands to postprocessing for one batch of n frames.

    outputs: the (last) model's outputs; for top-down, of the crops, with each crop's
    origin (M, 2) in frame pixels and frame_of (M,) index into the batch.
    """

    outputs: dict[str, np.ndarray]
    n_frames: int
    origins: np.ndarray | None = None
    frame_of: np.ndarray | None = None


class Predictor:
    """Frames (N, H, W, C) uint8 -> the batch's instances frame after frame, in two steps (infer,
    postprocess)."""

    def __init__(
        self,
        model_dirs: Sequence[str | os.PathLike],
        device: str = "cpu",
        threads: int = 0,
        peak_threshold: float | None = None,
        max_instances: int | None = None,
        backend: str = "auto",
        decode_threads: int | None = None,
    ):
        """threads: the network's CPU threads (0: the thread budget's, engine/threads.py); decode_threads: the
        decoder's for ``self.threads.decode`` (None: the budget's)."""

        def open_models(budget: ThreadBudget) -> list[ExportedModel]:
            return [
                ExportedModel(p, device, budget.model, peak_threshold, max_instances, backend, budget.spin)
                for p in model_dirs
            ]

        models = self._open_on_budget(model_dirs, open_models, threads, decode_threads, device)
        by_type = {m.metadata.model_type: m for m in models}
        kinds = sorted(t.value for t in by_type)
        pose_models = (["single_instance"], ["bottomup"], ["centroid"], ["centered_instance", "centroid"])
        if len(by_type) != len(models) or kinds not in pose_models:
            given = [m.metadata.model_type.value for m in models]
            raise ConfigError(
                f"models of types {given} do not make a pose model: give one single_instance, bottomup or "
                "centroid model, or a centroid and a centered_instance model (-m CENTROID_DIR -m "
                "CENTERED_DIR)"
            )
        self.models = models
        self.first = by_type.get(ModelType.CENTROID) or models[0]
        self.centered = by_type.get(ModelType.CENTERED_INSTANCE)
        last = self.centered or self.first
        if self.centered and self.centered.metadata.skeleton.nodes != last.metadata.skeleton.nodes:
            raise ConfigError("the centroid and centered-instance models come from different skeletons")
        self.skeleton: Skeleton = last.metadata.skeleton
        if last.metadata.model_type is ModelType.CENTROID:
            self.skeleton = Skeleton(nodes=(last.metadata.anchor_part or "centroid",), name="centroid")
        self.input_shape = self.first.metadata.input_shape  # (H, W, C) of the frames

    def _open_on_budget(
        self,
        model_dirs: Sequence[str | os.PathLike],
        open_models,
        threads: int,
        decode_threads: int | None,
        device: str,
    ) -> list[ExportedModel]:
        """The models opened on the thread budget (``self.threads``): the threads given are kept; otherwise a
        lone onnxruntime network on CPU is timed once and reopened on one core if it is light."""
        metadata = [load_model_dir(path).metadata for path in model_dirs]
        frame_shape = next(
            (m.input_shape for m in metadata if m.model_type is not ModelType.CENTERED_INSTANCE), (1, 1, 1)
        )
        gpu = device != "cpu"  # cuda or cuda:N
        self.threads = budget(frame_shape, len(model_dirs), None, threads, decode_threads, network_on_gpu=gpu)
        models = open_models(self.threads)
        if threads == 0 and device == "cpu" and len(models) == 1 and models[0].backend.name == "onnxruntime":
            measured = budget(
                frame_shape, 1, network_us_per_frame(models[0].backend.run, frame_shape), 0, decode_threads
            )
            if measured.model != self.threads.model:
                models[0].close()
                models = open_models(measured)
            self.threads = measured
        return models

    def close(self) -> None:
        """Release every backend's device memory; the predictor cannot run after."""
        for model in self.models:
            model.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def class_names(self) -> tuple[str, ...]:
        """The identities an identity model gives its instances (their track ids index this); empty if
        none."""
        return (self.centered or self.first).metadata.class_names

    def tracked_with(self, tracking: object | None) -> bool:
        """Whether output with this ``tracking`` (a TrackerConfig, or None) holds identities: a tracker's, or
        an identity model's classes. An identity model refuses a tracker (a ConfigError saying so)."""
        if tracking is not None and self.class_names:
            raise ConfigError(
                f"--tracking: this identity model gives every animal its class itself "
                f"({', '.join(self.class_names)}); run it without --tracking"
            )
        return tracking is not None or bool(self.class_names)

    @property
    def kind(self) -> str:
        return "top-down" if self.centered else self.first.metadata.model_type.value

    @property
    def overlaps(self) -> bool:
        """``submit`` returns before the network is done: one network, on a backend that overlaps (CUDA
        torch)."""
        return self.centered is None and self.first.backend.overlaps

    def submit(self, frames: np.ndarray) -> Pending:
        """Start the network(s) on frames (N, H, W, C) uint8; ``result()`` gives the RawBatch. The frames'
        buffer may be reused once this returns."""
        if not self.overlaps:
            return Pending.done(self.infer(frames))
        started = self.first.backend.submit(frames)
        return Pending(lambda: RawBatch(started.result(), len(frames)))

    def infer(self, frames: np.ndarray) -> RawBatch:
        """Run the network(s) on frames (N, H, W, C) uint8."""
        outputs = self.first.backend.run(frames)
        if self.centered is None:
            return RawBatch(outputs, len(frames))
        anchors = [found.points[:, 0] for found in self.first.decoder.decode(outputs)]  # per frame (n, 2)
        meta = self.centered.metadata
        crops, origins, frame_of = crops_around(frames, anchors, meta.crop_size, meta.crop_convention)
        crop_outputs = self.centered.backend.run(crops) if len(crops) else {}
        return RawBatch(crop_outputs, len(frames), origins, frame_of)

    def postprocess(self, raw: RawBatch) -> InstanceBatch:
        """The batch's instances frame after frame, in frame pixels."""
        if self.centered is None:
            return self.first.decoder.decode_batch(raw.outputs)
        if not raw.outputs:  # no animal in any frame of the batch
            return InstanceBatch.empty(raw.n_frames, self.skeleton.n_nodes)
        crops = self.centered.decoder.decode_batch(raw.outputs)
        if "class_vectors" in raw.outputs:  # identity model: a class per crop, none shared in a frame
            has_instance = crops.counts > 0
            ids, scores = identities_of_crops(raw.outputs["class_vectors"], raw.frame_of, has_instance)
            crops = InstanceBatch(
                crops.instances.with_identities(ids[has_instance], scores[has_instance]), crops.counts
            )
        return instances_from_crops(crops, raw.origins, raw.frame_of, raw.n_frames)
