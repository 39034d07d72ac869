"""Settings fitted to the labels (train/fit.py): the input scale and max stride follow the animals' size,
by the rule the module states, and a value the user set is kept."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.core.errors import ConfigError  # noqa: E402
from posestream.engine.types import ModelType, Skeleton  # noqa: E402
from posestream.train.config import load_config  # noqa: E402
from posestream.train.fit import SCALES, SPAN, STRIDES, fit_to_labels  # noqa: E402
from posestream.train.labels import LabeledImage, LabelSet  # noqa: E402
from posestream.train.receptive_field import receptive_field  # noqa: E402


def animals_of(side: float, n_frames: int = 20) -> LabelSet:
    """Labelled frames of two-node animals whose bounding box's longer side is ``side`` px."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_frames):
        origin = rng.uniform(0, 50, size=(2, 1, 2))  # (instances, 1, xy)
        points = np.concatenate([origin, origin + [side, side / 2]], axis=1).astype(np.float32)
        frames.append(LabeledImage(0, i, points))
    return LabelSet(Skeleton(("head", "tail"), ((0, 1),)), frames, "animals.slp", ["animals.mp4"])


def field_px(config, stride: int) -> float:
    config.backbone.max_stride = stride
    return receptive_field(config.backbone, config.head.output_stride) / config.data.input_scale


@pytest.mark.parametrize("profile", ["single_instance", "centroid", "centered_instance", "bottomup"])
@pytest.mark.parametrize("side", [20, 60, 100, 250, 500, 900])
def test_the_scale_is_the_largest_within_the_span_and_the_field_the_smallest_that_covers(profile, side):
    config = load_config(profile)
    reasons = fit_to_labels(config, animals_of(side))
    scale, stride = config.data.input_scale, config.backbone.max_stride
    assert len(reasons) == 2 and reasons[0].startswith(f"input scale {scale:g}")
    span = SPAN.get(ModelType(profile))
    if span is None:
        assert scale == 1.0  # centered crops at full resolution
    else:
        assert side * scale <= span or scale == SCALES[-1]
        larger = [s for s in SCALES if s > scale]
        assert not larger or side * min(larger) > span
    assert field_px(config, stride) >= side or stride == STRIDES[-1]
    smaller = [s for s in STRIDES if s < stride]
    assert not smaller or field_px(config, max(smaller)) < side


def test_the_flies_and_the_dancer_get_what_their_sizes_call_for():
    fly, dancer = animals_of(111), animals_of(439)
    centroid, bottomup, single = (load_config(p) for p in ("centroid", "bottomup", "single_instance"))
    fit_to_labels(centroid, fly), fit_to_labels(bottomup, fly), fit_to_labels(single, dancer)
    assert (centroid.data.input_scale, centroid.backbone.max_stride) == (0.5, 8)
    assert (bottomup.data.input_scale, bottomup.backbone.max_stride) == (1.0, 16)
    assert (single.data.input_scale, single.backbone.max_stride) == (0.375, 16)


def test_settings_the_user_gave_are_kept():
    config = load_config("single_instance", overrides=["data.input_scale=0.5", "backbone.max_stride=32"])
    assert fit_to_labels(config, animals_of(439)) == []
    assert (config.data.input_scale, config.backbone.max_stride) == (0.5, 32)
    scale_only = load_config("single_instance", overrides=["data.input_scale=1.0"])
    reasons = fit_to_labels(scale_only, animals_of(439))
    assert scale_only.data.input_scale == 1.0 and len(reasons) == 1 and reasons[0].startswith("max stride 32")


def test_labels_without_a_visible_animal_say_what_to_set():
    labels = animals_of(100)
    for frame in labels.frames:
        frame.points[:, 1] = np.nan  # one visible point each: no size
    with pytest.raises(ConfigError, match=r"animals\.slp.*set data\.input_scale and backbone\.max_stride"):
        fit_to_labels(load_config("bottomup"), labels)


def with_frames(labels: LabelSet, shape: tuple[int, int]) -> LabelSet:
    """``labels`` with black frames of (height, width) in place of their video's."""
    for frame in labels.frames:
        labels._images[(frame.video, frame.frame_idx)] = np.zeros((*shape, 1), np.uint8)
    return labels


def test_max_input_size_lowers_a_fitted_scale_and_inputs_out_of_bounds_are_refused_by_name():
    from posestream.train.data import InputGeometry

    labels = with_frames(animals_of(100), (1500, 2000))  # the span alone would keep scale 1
    config = load_config("single_instance", overrides=["data.max_input_size=1000"])
    reasons = fit_to_labels(config, labels)
    assert config.data.input_scale == 0.375 and "within data.max_input_size 1000" in reasons[0]
    assert max(InputGeometry.for_config(config, labels).input_shape) <= 1000
    given = load_config("single_instance", overrides=["data.input_scale=1.0", "data.max_input_size=1000"])
    fit_to_labels(given, labels)
    with pytest.raises(ConfigError, match=r"1504x2000 px, over data.max_input_size \(1000\): lower data"):
        InputGeometry.for_config(given, labels)
    small = load_config("bottomup", overrides=["data.input_scale=0.25", "data.min_input_size=600"])
    fit_to_labels(small, labels)
    with pytest.raises(ConfigError, match=r"under data.min_input_size \(600\): raise data.input_scale"):
        InputGeometry.for_config(small, labels)
    crops = load_config("centered_instance", overrides=["head.crop_size=256", "data.max_input_size=128"])
    fit_to_labels(crops, labels)
    with pytest.raises(ConfigError, match=r"256x256 px, over data.max_input_size \(128\): lower head"):
        InputGeometry.for_config(crops, labels)
    with pytest.raises(ConfigError, match=r"data.min_input_size.*<= data.max_input_size \(64\)"):
        load_config("bottomup", overrides=["data.min_input_size=128", "data.max_input_size=64"])
