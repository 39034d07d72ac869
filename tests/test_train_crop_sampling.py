"""Crop sampling: each method puts its crops where it promises, and training on crops runs end to end."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.engine import ConfigError  # noqa: E402
from posestream.train.config import load_config  # noqa: E402
from posestream.train.crop_sampling import density_weights  # noqa: E402
from posestream.train.data import InputGeometry, PoseDataset  # noqa: E402
from posestream.train.labels import load_labels  # noqa: E402

CROP, SHIFT = 64, 0.3
STILL = ["augment.rotation=0", "augment.translate=0", "augment.scale_min=1", "augment.scale_max=1"]


def cropped(synth_gray, method: str, shift: float = SHIFT) -> PoseDataset:
    video, _ = synth_gray
    overrides = STILL + [
        f"augment.crop_sampling={method}",
        f"augment.crop_size={CROP}",
        "augment.crop_ratio=1",
        f"augment.max_shift={shift}",
        "data.input_scale=1.0",
        "backbone.max_stride=16",
    ]
    config = load_config("bottomup", overrides=overrides, labels=str(video.slp))
    labels = load_labels(video.slp)
    return PoseDataset(labels, config, InputGeometry.for_config(config, labels), augment=True, seed=0)


@pytest.mark.parametrize("method", ["keypoint", "density"])
def test_a_keypoint_placed_crop_holds_its_keypoint_within_the_shift_of_its_centre(synth_gray, method):
    dataset = cropped(synth_gray, method)
    centre = (CROP - 1) / 2
    for index in range(len(dataset)):
        image, points = dataset.augmented(0, index)
        assert tuple(image.shape[1:]) == (CROP, CROP)
        off_centre = np.abs(points.reshape(-1, 2) - centre).max(axis=1)  # (K,), NaN for unlabelled nodes
        assert np.nanmin(off_centre) <= SHIFT * CROP + 1e-3  # the sampled keypoint, at least


def test_uniform_crops_are_centred_anywhere_in_the_frame(synth_gray):
    """Where each crop's centre falls in the frame (no shift): all over it, and never outside."""
    uniform = cropped(synth_gray, "uniform", shift=0.0)
    height, width = uniform.geometry.frame_shape
    centres = []  # (x, y) in the frame
    for index in range(len(uniform)):
        points, rng = uniform.labels.frames[index].points, np.random.default_rng(index)
        matrix, _ = uniform._geometry((height, width, 1), points, -1, rng)
        centres.append(np.linalg.solve(matrix, [(CROP - 1) / 2, (CROP - 1) / 2, 1])[:2])
    x, y = np.array(centres).T
    assert np.ptp(x) > 0.7 * width and np.ptp(y) > 0.7 * height
    assert x.min() >= 0 and y.min() >= 0 and x.max() <= width - 1 and y.max() <= height - 1


def test_density_favours_keypoints_with_company():
    keypoints = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]])
    np.testing.assert_allclose(density_weights(keypoints, radius=5), [0.3, 0.3, 0.3, 0.1])


def test_crop_sampling_settings_are_checked(synth_gray):
    video, _ = synth_gray
    with pytest.raises(ConfigError, match="augment.crop_sampling.*whole-frame"):
        load_config("centered_instance", overrides=["augment.crop_sampling=keypoint"])
    with pytest.raises(ConfigError, match="augment.crop_sampling"):
        load_config("bottomup", overrides=["augment.crop_sampling=middle"])
    with pytest.raises(ConfigError, match="augment.max_shift"):
        load_config("bottomup", overrides=["augment.max_shift=0.5"])
    with pytest.raises(ConfigError, match="augment.crop_size.*multiple of backbone.max_stride \\(16\\)"):
        load_config(
            "bottomup",
            overrides=["augment.crop_sampling=hybrid", "augment.crop_size=72", "backbone.max_stride=16"],
        )
    config = load_config(  # a stride fitted to the labels is checked once it is
        "bottomup", overrides=["augment.crop_sampling=hybrid", "augment.crop_size=72"], labels=str(video.slp)
    )
    config.data.input_scale, config.backbone.max_stride = 1.0, 16
    with pytest.raises(ConfigError, match="augment.crop_size.*multiple of backbone.max_stride \\(16\\).*80"):
        InputGeometry.for_config(config, load_labels(video.slp))


def test_a_model_trains_on_crops_and_validates_on_whole_frames(synth_gray, tmp_path):
    from posestream.train.trainer import Trainer

    video, _ = synth_gray
    overrides = [
        "augment.crop_sampling=hybrid",
        "augment.crop_size=64",
        "data.input_scale=1.0",
        "backbone.max_stride=16",
        "backbone.filters=8",
        "optim.max_epochs=1",
        "optim.steps_per_epoch=3",
    ]
    config = load_config("single_instance", overrides=overrides, labels=str(video.slp))
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert "training on 64x64 crops: hybrid sampling" in trainer.describe()
    assert trainer.val_set.input_shape == trainer.geometry.input_shape == (160, 192)
    result = trainer.run()
    assert result.epochs == 1 and np.isfinite(result.best_val_loss)
