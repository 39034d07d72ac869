"""Settings fitted to the labels: the input scale and the network's depth, from the animals' size.

SLEAP's "choosing models" guide has a user pick these by hand, looking at the receptive field drawn on a
frame (``preview-rf``). Here a setting left null (the profiles leave both null) is chosen from the
labelled animals' size A: the 90th percentile of the longer side of their bounding boxes, frame pixels.

- ``data.input_scale``: the largest of 1, 3/4, 1/2, 3/8 and 1/4 at which A spans at most ``SPAN`` input
  pixels: 64 for a centroid model (one point per animal, found as well on a coarse image), 192 for
  single-instance and bottom-up models (every part needs its pixels). Frames are never enlarged. A
  centered-instance model crops at scale 1. With ``data.max_input_size`` set, no larger than keeps the
  frames' longer side (rounded up to the deepest stride, 64) within it.
- ``backbone.max_stride``: the smallest of 8, 16, 32 and 64 whose receptive field covers A, so that the
  network sees a whole animal at once (what tells its parts apart), and goes no deeper: each level of the
  UNet costs about as much compute as the first.

``fit_to_labels`` sets them and says, one line each, what it chose and why (``train`` prints it).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.types import ModelType
from posestream.train.backbones.pyramid import STRIDE as PYRAMID_STRIDE
from posestream.train.config import TrainConfig
from posestream.train.data import frame_shape
from posestream.train.labels import LabelSet
from posestream.train.receptive_field import animal_sides, receptive_field

SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)
STRIDES = (8, 16, 32, 64)
SPAN = {ModelType.CENTROID: 64, ModelType.SINGLE_INSTANCE: 192, ModelType.BOTTOMUP: 192}  # input px


def animal_size(labels: LabelSet) -> float:
    """A: the 90th percentile of the labelled animals' longer bounding-box side, in frame pixels."""
    sides = animal_sides(labels)
    if not sides:
        raise ConfigError(
            f"{labels.labels_path}: no labelled animal has two visible points, so the input scale and "
            "network depth cannot be fitted to the labels; set data.input_scale and backbone.max_stride"
        )
    return float(np.percentile(sides, 90))


def fit_to_labels(config: TrainConfig, labels: LabelSet) -> list[str]:
    """Set ``config``'s null ``data.input_scale`` and ``backbone.max_stride`` from ``labels``; the reasons."""
    if config.data.input_scale is not None and config.backbone.max_stride is not None:
        return []
    size = animal_size(labels)
    reasons = []
    if config.data.input_scale is None:
        config.data.input_scale = fitted_scale(config.type, size)
        span = SPAN.get(config.type)
        why = f"animals up to {size:.0f} px (p90) span {size * config.data.input_scale:.0f} px"
        why += f", at most {span} for a {config.model_type} model" if span else "; centered crops stay at 1"
        bound = config.data.max_input_size
        if span and bound is not None:
            longest = max(frame_shape(labels))
            config.data.input_scale = min(config.data.input_scale, scale_within(longest, bound))
            why += f"; frames of {longest} px within data.max_input_size {bound}"
        reasons.append(f"input scale {config.data.input_scale:g} ({why})")
    if config.backbone.max_stride is None and config.backbone.type != "unet":
        config.backbone.max_stride = PYRAMID_STRIDE
        reasons.append(f"max stride {PYRAMID_STRIDE} (a {config.backbone.type} backbone's bottleneck)")
    if config.backbone.max_stride is None:
        config.backbone.max_stride = fitted_stride(config, size)
        field = receptive_field(config.backbone, config.head.output_stride) / config.data.input_scale
        reasons.append(
            f"max stride {config.backbone.max_stride} (receptive field {field:.0f} px in the frame, the "
            f"smallest that covers an animal of {size:.0f} px)"
        )
    config.validate()  # the fitted values against the rest: head strides, crop size
    return reasons


def fitted_scale(model_type: ModelType, size: float) -> float:
    """The largest of ``SCALES`` at which an animal of ``size`` frame px spans at most its ``SPAN``."""
    span = SPAN.get(model_type)
    if span is None:  # centered-instance: crops at full resolution
        return 1.0
    return next((s for s in SCALES if size * s <= span), SCALES[-1])


def scale_within(longest: int, bound: int) -> float:
    """The largest of ``SCALES`` at which a frame side of ``longest`` px, rounded up to the deepest of
    ``STRIDES``, is at most ``bound``; the smallest scale if none is."""
    deepest = STRIDES[-1]
    return next((s for s in SCALES if math.ceil(longest * s / deepest) * deepest <= bound), SCALES[-1])


def fitted_stride(config: TrainConfig, size: float) -> int:
    """The smallest of ``STRIDES`` (and no finer than the heads) whose receptive field covers ``size``."""
    head = config.head
    finest = max(head.output_stride, head.paf_output_stride if config.type is ModelType.BOTTOMUP else 1)
    for stride in (s for s in STRIDES if s >= finest):
        backbone = dataclasses.replace(config.backbone, max_stride=stride)
        if receptive_field(backbone, head.output_stride) / config.data.input_scale >= size:
            return stride
    return STRIDES[-1]
