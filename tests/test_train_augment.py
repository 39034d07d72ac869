"""Augmentation moves images and keypoints together."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from posestream.train.augment import random_geometry, transform_points, translation, warp_image
from posestream.train.config import AugmentConfig


@pytest.mark.parametrize("seed", range(6))
def test_a_marked_pixel_lands_on_its_transformed_keypoint(seed):
    rng = np.random.default_rng(seed)
    image = torch.zeros(1, 64, 80)
    point = np.array([[23.0, 37.0]])  # x, y
    image[0, 37, 23] = 255.0
    cfg = AugmentConfig(rotation=180, scale_min=0.8, scale_max=1.2, translate=5, flip=True)
    geometry, _ = random_geometry(cfg, rng, can_flip=True)
    matrix = translation(40, 32) @ geometry @ translation(-40, -32)  # about the centre
    out = warp_image(image, matrix, (64, 80))
    y, x = np.unravel_index(int(out[0].argmax()), (64, 80))
    expected = transform_points(point, matrix)[0]
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1, (x, y, expected)


def test_identity_warp_keeps_the_image():
    image = torch.rand(3, 20, 30) * 255
    out = warp_image(image, np.eye(3), (20, 30))
    torch.testing.assert_close(out, image, atol=1e-3, rtol=0)


def test_flip_swaps_symmetric_nodes_so_left_stays_left(tmp_path):
    """Under random flips and rotations the left ear stays on the animal's left: the dataset
    swaps the ear labels whenever it mirrors the image."""
    from posestream.engine.synth import SYNTH_SKELETON, SynthConfig, write_synthetic_video
    from posestream.train.config import load_config
    from posestream.train.data import InputGeometry, PoseDataset
    from posestream.train.fit import fit_to_labels
    from posestream.train.labels import load_labels
    from posestream.train.targets import grid

    out = write_synthetic_video(
        tmp_path / "one.mp4", SynthConfig(frames=4, width=128, height=128, animals=1), progress=False
    )
    labels = load_labels(out.slp)
    config = load_config("single_instance", overrides=["augment.flip=true", "data.input_scale=1.0"])
    fit_to_labels(config, labels)  # the network's depth, as train chooses it
    dataset = PoseDataset(labels, config, InputGeometry.for_config(config, labels), augment=True)
    nodes, stride = SYNTH_SKELETON.nodes, config.head.output_stride
    for epoch in range(8):
        dataset.epoch = epoch
        _, maps = dataset[epoch % 4]
        maps = maps.numpy()
        cells = [np.unravel_index(m.argmax(), m.shape) for m in maps]
        peaks = np.array([(grid(maps.shape[2], stride)[j], grid(maps.shape[1], stride)[i]) for i, j in cells])
        forward = peaks[nodes.index("nose")] - peaks[nodes.index("neck")]
        to_left = peaks[nodes.index("left_ear")] - peaks[nodes.index("head")]
        # image y points down: the animal's left is where forward x to_left < 0
        assert forward[0] * to_left[1] - forward[1] * to_left[0] < 0, f"epoch {epoch}"


def test_symmetries_none_turns_flips_off_and_auto_keeps_the_named_pairs(tmp_path):
    from posestream.engine.synth import SynthConfig, write_synthetic_video
    from posestream.train.config import load_config
    from posestream.train.data import InputGeometry, PoseDataset
    from posestream.train.labels import load_labels

    out = write_synthetic_video(
        tmp_path / "one.mp4", SynthConfig(frames=2, width=64, height=64, animals=1), progress=False
    )
    labels = load_labels(out.slp)
    assert labels.skeleton.symmetries  # left_ear/right_ear, from the names
    flipped = {}
    for setting in ("auto", "none"):
        overrides = ["augment.flip=true", "data.input_scale=1.0", "backbone.max_stride=16"]
        config = load_config("single_instance", overrides=[*overrides, f"data.symmetries={setting}"])
        dataset = PoseDataset(labels, config, InputGeometry.for_config(config, labels), augment=True)
        flipped[setting] = dataset.can_flip
    assert flipped == {"auto": True, "none": False}


def test_preview_augment_draws_the_examples_training_makes_and_trains_nothing(synth_gray, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    clip, _ = synth_gray
    posestream = str(Path(sys.executable).with_name("posestream"))
    run = tmp_path / "run"
    labels = str(clip.analysis_h5)
    common = [posestream, "train", labels, "--profile", "single_instance", "-o", str(run)]
    done = subprocess.run([*common, "--preview-augment", "6"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "augment_preview.png: training examples as the network sees them" in done.stdout
    with Image.open(run / "augment_preview.png") as png:
        assert png.size == (1200, 600)  # 4 columns x 2 rows of 3-inch panels at 100 dpi
    assert not (run / "last.pt").exists() and not (run / "training_log.csv").exists()
    refused = subprocess.run([*common, "--preview-augment", "0"], capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "--preview-augment 0: how many examples" in refused.stderr


def test_kernel_augmentations_keep_flat_images_flat_and_change_texture_the_right_way():
    from posestream.train.augment import apply_kernels

    flat = torch.full((1, 24, 32), 90.0)
    every = AugmentConfig(blur_ratio=1, motion_blur_ratio=1, sharpen_ratio=1, edge_ratio=1)
    torch.testing.assert_close(apply_kernels(flat.clone(), every, np.random.default_rng(0)), flat)
    noise = torch.rand(1, 48, 48, generator=torch.Generator().manual_seed(0)) * 100 + 50
    blurred = apply_kernels(noise.clone(), AugmentConfig(blur_ratio=1), np.random.default_rng(1))
    sharpened = apply_kernels(noise.clone(), AugmentConfig(sharpen_ratio=1), np.random.default_rng(1))
    assert blurred.std() < noise.std() < sharpened.std()


@pytest.mark.parametrize(("angle", "axis"), [(0.0, 0), (90.0, 1)])
def test_motion_blur_spreads_a_point_along_its_direction_only(angle, axis):
    from posestream.train.augment import motion_kernel

    kernel = motion_kernel(7, angle)
    assert float(kernel.sum()) == pytest.approx(1.0)
    spread = kernel.sum(dim=axis)  # (7,): per column of a horizontal line, per row of a vertical one
    assert (spread > 0).sum() == 7 and (kernel.sum(dim=1 - axis) > 0).sum() == 1


def test_kernel_augmentations_off_draw_nothing_so_runs_keep_their_randomness():
    from posestream.train.augment import apply_kernels

    rng, untouched = np.random.default_rng(5), np.random.default_rng(5)
    apply_kernels(torch.rand(1, 8, 8) * 255, AugmentConfig(), rng)
    assert rng.random() == untouched.random()


def test_kernel_settings_out_of_range_are_named():
    from posestream.core.errors import ConfigError

    with pytest.raises(ConfigError, match="augment.sharpen_ratio"):
        AugmentConfig(sharpen_ratio=1.5).validate()
    with pytest.raises(ConfigError, match="augment.motion_blur_size"):
        AugmentConfig(motion_blur_size=4).validate()
