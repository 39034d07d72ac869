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
