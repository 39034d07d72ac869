"""Reading SLEAP labels: video path mapping, embedded images, symmetries from names."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("sleap_io")
from posestream.engine import ConfigError, VideoNotFoundError
from posestream.train.labels import infer_symmetries, load_labels


def test_fly_labels_with_a_mapped_video(sleap_file):
    labels_path, video = sleap_file("centered_pair_predictions.slp"), sleap_file("centered_pair_small.mp4")
    labels = load_labels(labels_path, [str(video)], frames="0-99")
    assert len(labels) == 100 and labels.skeleton.n_nodes == 24
    assert labels.video_paths == [str(video)]
    assert ("wingL", "wingR") in labels.skeleton.symmetry_names  # inferred from the names
    assert labels.image(0).shape == (384, 384, 1)
    assert all(f.points.shape[1:] == (24, 2) for f in labels.frames)


def test_video_named_from_another_machine_is_found_beside_the_labels(tmp_path, synth_gray):
    import sleap_io as sio

    out, _ = synth_gray
    moved = tmp_path / "moved"
    moved.mkdir()
    labels = sio.load_slp(str(out.slp), open_videos=False)
    labels.videos[0].replace_filename("/other/machine/gray.mp4", open=False)
    sio.save_slp(labels, str(moved / "labels.slp"))
    with pytest.raises(VideoNotFoundError, match="/other/machine/gray.mp4.*--video-path OLD=NEW"):
        load_labels(moved / "labels.slp")
    shutil.copy(out.video, moved / "gray.mp4")
    assert load_labels(moved / "labels.slp").video_paths == [str(moved / "gray.mp4")]
    elsewhere = load_labels(moved / "labels.slp", [f"/other/machine/gray.mp4={out.video}"])
    assert elsewhere.video_paths == [str(out.video)]
    np.testing.assert_array_equal(elsewhere.image(3), load_labels(moved / "labels.slp").image(3))


def test_a_single_new_path_needs_a_single_video(synth_gray):
    out, _ = synth_gray
    with pytest.raises(ConfigError, match="OLD=NEW"):
        load_labels(out.slp, ["a.mp4", "b.mp4"])


def test_package_with_embedded_images(sleap_file):
    labels = load_labels(sleap_file("minimal_instance.pkg.slp"))
    assert len(labels) == 1 and labels.skeleton.nodes == ("A", "B")
    image = labels.image(0)
    assert image.ndim == 3 and image.dtype == np.uint8 and image.std() > 0


def test_symmetry_inference():
    names = ["nose", "left_eye", "right_eye", "wingL", "wingR", "forelegL1", "forelegR1", "leg", "reg", "Lhead", "Rhead"]
    assert infer_symmetries(names) == [
        ("left_eye", "right_eye"), ("wingL", "wingR"), ("forelegL1", "forelegR1"), ("Lhead", "Rhead"),
    ]  # fmt: skip


def test_missing_labels_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.slp"):
        load_labels(tmp_path / "nope.slp")
