"""Training examples for each model type: network input plus target maps.

- single_instance, centroid, bottomup: the whole frame, scaled by
  ``data.input_scale`` and padded to a multiple of ``backbone.max_stride``.
- centered_instance: one example per labelled animal, a ``crop_size`` square
  centred on its anchor.

Identity models add the class of each example's animals (their track in the labels): a class index per
crop (-1: the animal has no track), or a class map per track for bottom-up.

Examples are made on the fly with fresh augmentation, reproducible from
(seed, epoch, index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from posestream.core.errors import ConfigError
from posestream.engine.types import ModelType, network_input_shape
from posestream.train.augment import (
    adjust_intensity,
    apply_kernels,
    linear,
    random_geometry,
    transform_points,
    translation,
    warp_image,
)
from posestream.train.config import TrainConfig
from posestream.train.contact import frame_gap, nearest_gaps
from posestream.train.crop_sampling import centre_shift, crop_centre
from posestream.train.labels import LabelSet
from posestream.train.loader import FailedExample
from posestream.train.targets import class_maps, confidence_maps, instance_anchors, part_affinity_fields


@dataclass(frozen=True)
class InputGeometry:
    """Where frames go: network input size and how labels map onto it."""

    input_shape: tuple[int, int]  # (height, width) of the network input
    input_scale: float
    anchor: int | None  # anchor node index (centroid / centered-instance)
    crop_size: int | None  # centered-instance crop side
    frame_shape: tuple[int, int] | None = None  # (height, width) of the labelled frames (largest video)
    train_shape: tuple[int, int] | None = None  # crop sampling: the training crops' (height, width)

    @classmethod
    def for_config(cls, config: TrainConfig, labels: LabelSet) -> InputGeometry:
        """Input size for these labels; resolves ``head.crop_size`` when it is unset."""
        if config.data.input_scale is None or config.backbone.max_stride is None:
            raise ValueError("fit the config to the labels first (train/fit.py: fit_to_labels)")
        config.validate()  # the settings against the stride, wherever it came from
        nodes = labels.skeleton.nodes
        anchor_part = config.head.anchor_part
        if anchor_part is not None and anchor_part not in nodes:
            raise ConfigError(
                f"config key 'head.anchor_part': {anchor_part!r} is not a node; nodes: {list(nodes)}"
            )
        anchor = nodes.index(anchor_part) if anchor_part is not None else None
        stride = config.backbone.max_stride
        height, width = frame_shape(labels)
        if config.type is ModelType.CENTERED_INSTANCE:
            crop = config.head.crop_size or auto_crop_size(labels, anchor, stride)
            _check_input_size(config, (crop, crop))
            return cls((crop, crop), 1.0, anchor, crop, (height, width))
        scale = config.data.input_scale
        shape = network_input_shape((height, width), scale, stride)
        _check_input_size(config, shape)
        return cls(shape, scale, anchor, None, (height, width), _crop_sampling_shape(config))


def frame_shape(labels: LabelSet) -> tuple[int, int]:
    """(height, width) of the largest labelled frames: the first labelled frame of each video."""
    firsts = _first_per_video(labels)
    return max(labels.image(i).shape[0] for i in firsts), max(labels.image(i).shape[1] for i in firsts)


def _check_input_size(config: TrainConfig, shape: tuple[int, int]) -> None:
    """The network input's (height, width) within ``data.min_input_size`` and ``data.max_input_size``."""
    data = config.data
    setting = "head.crop_size" if config.type is ModelType.CENTERED_INSTANCE else "data.input_scale"
    size = f"the network input is {shape[0]}x{shape[1]} px"
    if data.max_input_size is not None and max(shape) > data.max_input_size:
        raise ConfigError(
            f"{size}, over data.max_input_size ({data.max_input_size}): lower {setting}, or raise "
            "data.max_input_size"
        )
    if data.min_input_size is not None and min(shape) < data.min_input_size:
        raise ConfigError(
            f"{size}, under data.min_input_size ({data.min_input_size}): raise {setting}, or lower "
            "data.min_input_size"
        )


def _crop_sampling_shape(config: TrainConfig) -> tuple[int, int] | None:
    """The training crops' (height, width) with crop sampling on (their side is checked against the stride
    by ``TrainConfig.validate``)."""
    side = config.augment.crop_size
    return None if config.augment.crop_sampling == "none" else (side, side)


def auto_crop_size(labels: LabelSet, anchor: int | None, stride: int) -> int:
    """Smallest multiple of ``stride`` holding 99% of animals around their anchor, with a margin."""
    reach = []
    for frame in labels.frames:
        centres = instance_anchors(frame.points, anchor)  # (n_instances, 2)
        offsets = np.abs(frame.points - centres[:, None])  # (n_instances, n_nodes, 2)
        reach.extend(np.nanmax(offsets, axis=(1, 2)).tolist())
    half = float(np.nanpercentile(reach, 99)) + 8.0
    return _round_up(2 * half, stride)


def _round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _first_per_video(labels: LabelSet) -> list[int]:
    seen: dict[int, int] = {}
    for i, frame in enumerate(labels.frames):
        seen.setdefault(frame.video, i)
    return list(seen.values())


class PoseDataset(torch.utils.data.Dataset):
    """Network inputs (C, H, W) float in [0, 1] and the targets of ``config.model_type``."""

    def __init__(
        self, labels: LabelSet, config: TrainConfig, geometry: InputGeometry, augment: bool, seed: int = 0
    ):
        self.labels, self.config, self.geometry = labels, config, geometry
        self.augment, self.seed, self.epoch = augment, seed, 0
        # the network's input: crops when training with crop sampling, else the scaled frame (or the crop)
        self.input_shape = (augment and geometry.train_shape) or geometry.input_shape
        self.type = config.type
        self.edges = np.array(labels.skeleton.edges, np.int64).reshape(-1, 2)
        self.flip_perm = labels.skeleton.flip_permutation()
        self.can_flip = config.data.symmetries == "auto" and bool(labels.skeleton.symmetries)
        self.n_classes = len(labels.track_names) if config.head.classes else 0
        if self.type is ModelType.CENTERED_INSTANCE:
            self.examples = [
                (i, k)
                for i, frame in enumerate(labels.frames)
                for k, anchor in enumerate(instance_anchors(frame.points, geometry.anchor))
                if np.isfinite(anchor).all()
            ]
        else:
            self.examples = [(i, -1) for i in range(len(labels.frames))]

    def __len__(self) -> int:
        return len(self.examples)

    def contact_gaps(self) -> np.ndarray:
        """Each example's smallest gap between two animals, frame pixels (n_examples,): its own animal's
        to any other for a crop, the closest two of its frame for a whole frame; inf with one animal."""
        frames = self.labels.frames
        if self.type is ModelType.CENTERED_INSTANCE:
            gaps = [nearest_gaps(frame.points) for frame in frames]  # per frame: (I,)
            return np.array([gaps[i][k] for i, k in self.examples], np.float64)
        return np.array([frame_gap(frames[i].points) for i, _ in self.examples], np.float64)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, ...] | FailedExample:
        """Example ``index`` (of epoch ``self.epoch``), or ``(epoch, index)``; a FailedExample naming its
        labelled frame if it cannot be made."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        try:
            return self.example(epoch, index)
        except Exception as exc:  # handed to the trainer, which raises it once (train/loader.py)
            frame = self.labels.frames[self.examples[index][0]]
            where = f"{self.labels.video_paths[frame.video]} frame {frame.frame_idx}"
            return FailedExample(
                f"{self.labels.labels_path}: the training example of {where} (epoch {epoch}) failed: "
                f"{type(exc).__name__}: {exc}; check that labelled frame (points, image)"
            )

    def example(self, epoch: int, index: int) -> tuple[torch.Tensor, ...]:
        """Network input (C, H, W) in [0, 1] and its targets, augmented as (seed, epoch, index) draws."""
        image, points = self.augmented(epoch, index)
        frame_i, instance = self.examples[index]
        track_ids = self.labels.frames[frame_i].track_ids  # (n_instances,)
        return (
            image / 255.0,
            *self._targets(points, track_ids[instance : instance + 1] if instance >= 0 else track_ids),
        )

    def augmented(self, epoch: int, index: int) -> tuple[torch.Tensor, np.ndarray]:
        """What the network sees of example ``index`` in ``epoch``: the input image (C, H, W) in grey levels
        0-255 and its keypoints (n_instances, n_nodes, 2) in input pixels (one instance for a crop)."""
        frame_i, instance = self.examples[index]
        rng = np.random.default_rng((self.seed, epoch, index))
        image = self.labels.image(frame_i)
        points = self.labels.frames[frame_i].points
        matrix, flipped = self._geometry(image.shape, points, instance, rng)
        tensor = torch.from_numpy(image).permute(2, 0, 1).float()  # (C, H, W), 0-255
        tensor = warp_image(tensor, matrix, self.input_shape)
        if self.augment:
            kinds = self.config.augment
            tensor = adjust_intensity(apply_kernels(tensor, kinds, rng), kinds, rng)
        points = transform_points(points, matrix)
        if flipped:
            points = points[:, self.flip_perm]
        if instance >= 0:
            points = points[instance : instance + 1]
        return tensor, points

    def _geometry(
        self, shape: tuple[int, ...], points: np.ndarray, instance: int, rng
    ) -> tuple[np.ndarray, bool]:
        """Input-pixel -> network-pixel matrix: scale (or centre on the anchor, or on the crop's sampled
        point), then augment about the centre."""
        out_h, out_w = self.input_shape
        centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
        if instance >= 0:
            anchor = instance_anchors(points[instance : instance + 1], self.geometry.anchor)[0]
            place = translation(-anchor[0], -anchor[1])
        elif self.augment and self.geometry.train_shape:  # crop sampling
            s, cfg = self.geometry.input_scale, self.config.augment
            x, y = crop_centre(points, shape[:2], cfg, rng) * s
            augment, flipped = random_geometry(cfg, rng, self.can_flip)
            centre = centre_out + centre_shift(cfg, rng)
            return translation(*centre) @ augment @ translation(-x, -y) @ linear(s, 0, 0, s), flipped
        else:
            s = self.geometry.input_scale
            centre_in = ((shape[1] - 1) / 2 * s, (shape[0] - 1) / 2 * s)
            place = translation(-centre_in[0], -centre_in[1]) @ linear(s, 0, 0, s)
        augment, flipped = (np.eye(3), False)
        if self.augment:
            augment, flipped = random_geometry(self.config.augment, rng, self.can_flip)
        elif instance < 0:  # no augmentation: keep the frame at the top-left, as at inference
            return linear(self.geometry.input_scale, 0, 0, self.geometry.input_scale), False
        return translation(*centre_out) @ augment @ place, flipped

    def _targets(self, points: np.ndarray, track_ids: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The targets of the example's animals, points (n_instances, n_nodes, 2) in input pixels and their
        tracks (n_instances,)."""
        head = self.config.head
        out_h, out_w = self.input_shape
        stride = head.output_stride
        shape = (out_h // stride, out_w // stride)
        if self.type is ModelType.CENTROID:
            anchors = instance_anchors(points, self.geometry.anchor)[:, None]  # (n_instances, 1, 2)
            return (torch.from_numpy(confidence_maps(anchors, shape, stride, head.sigma)),)
        maps = torch.from_numpy(confidence_maps(points, shape, stride, head.sigma))
        if self.type is not ModelType.BOTTOMUP:
            return (maps, torch.tensor(int(track_ids[0]))) if self.n_classes else (maps,)
        second_stride = head.paf_output_stride
        second_shape = (out_h // second_stride, out_w // second_stride)
        if self.n_classes:
            classes = class_maps(points, track_ids, self.n_classes, second_shape, second_stride, head.sigma)
            return maps, torch.from_numpy(classes)
        pafs = part_affinity_fields(points, self.edges, second_shape, second_stride, head.paf_width)
        return maps, torch.from_numpy(pafs)
