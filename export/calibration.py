"""Frames that calibrate int8 quantization: the model's inputs as the engine will give them.

Full-frame models take whole frames of the model's input size; centered-instance models take crops
around labelled animals (cut as the engine cuts them). From labels (a run's training frames, or an
imported model's training labels) or, for full-frame models, from a video (frames evenly spread).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.model.topdown import crops_around
from posestream.engine.types import ModelMetadata, ModelType


def spread(indices: Sequence[int], count: int) -> list[int]:
    """Up to ``count`` of ``indices``, evenly spread."""
    if not len(indices):
        return []
    return [
        indices[int(k)] for k in np.unique(np.linspace(0, len(indices) - 1, min(count, len(indices))).round())
    ]


def inputs_from_labels(
    labels, indices: Sequence[int], metadata: ModelMetadata, anchor: int | None
) -> np.ndarray:
    """uint8 model inputs (N, H, W, C) from labelled frames ``indices`` of a ``LabelSet``.

    Centered-instance: a crop around one animal's anchor (node index ``anchor``, or the box centre) per frame.
    """
    from posestream.train.targets import instance_anchors

    shape = metadata.input_shape
    if metadata.model_type is ModelType.CENTERED_INSTANCE:
        anchors = []
        for i in indices:
            found = instance_anchors(labels.frames[i].points, anchor)
            # one animal per frame: spread over frames
            anchors.append(found[np.isfinite(found).all(axis=1)][:1])
        frames = np.stack([labels.image(i) for i in indices])
        return crops_around(frames, anchors, shape[:2], metadata.crop_convention)[0]
    images = [labels.image(i) for i in indices if labels.image(i).shape == shape]
    if not images:
        raise ConfigError(
            f"int8 calibration: no labelled frame of the model's input size {shape}; "
            "calibrate with frames of that size (a video: --calibration VIDEO)"
        )
    return np.stack(images)


def inputs_from_video(path: str | os.PathLike, count: int, metadata: ModelMetadata) -> np.ndarray:
    """``count`` frames (N, H, W, C) evenly spread over a video, for a full-frame model."""
    from posestream.engine.frame_ranges import FrameRanges
    from posestream.engine.sources import VideoFileReader

    if metadata.model_type is ModelType.CENTERED_INSTANCE:
        raise ConfigError(
            "int8 calibration of a centered-instance model needs crops around animals: calibrate "
            "with labels (--calibration LABELS.slp), not a video"
        )
    with VideoFileReader(path) as reader:
        video = reader.metadata
        if (video.height, video.width, video.channels) != tuple(metadata.input_shape):
            raise ConfigError(
                f"int8 calibration: {path} has frames of {(video.height, video.width, video.channels)}, "
                f"the model takes {tuple(metadata.input_shape)}"
            )
        picked = spread(range(len(reader)), count)
        frames = [
            image for _, image in reader.iter_frames(FrameRanges.from_spans([(i, i + 1) for i in picked]))
        ]
    return np.stack(frames)


def is_labels_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".slp"
