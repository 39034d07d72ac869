"""Reading SLEAP labels: video path mapping, embedded images, symmetries from names."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sleap_io")
from posestream.engine import ConfigError, VideoNotFoundError
from posestream.train.labels import infer_symmetries, load_labels

POSESTREAM = str(Path(sys.executable).with_name("posestream"))


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
    names = [
        "nose",
        "left_eye",
        "right_eye",
        "wingL",
        "wingR",
        "forelegL1",
        "forelegR1",
        "leg",
        "reg",
        "Lhead",
        "Rhead",
    ]
    assert infer_symmetries(names) == [
        ("left_eye", "right_eye"),
        ("wingL", "wingR"),
        ("forelegL1", "forelegR1"),
        ("Lhead", "Rhead"),
    ]


def test_missing_labels_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.slp"):
        load_labels(tmp_path / "nope.slp")


def test_pack_embeds_the_labelled_images_and_the_trainer_reads_them(tmp_path, synth_gray):
    """`pack` round trip: the package holds every labelled frame (as decoded from the video, within one grey
    level: sleap-io decodes with its own reader as SLEAP does), it is read without the video, and trains."""
    from posestream.train.pack import pack_labels

    out, _ = synth_gray
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    done = pack_labels(out.slp, moved / "gray.pkg.slp", progress=False)
    original, packed = load_labels(out.slp), load_labels(moved / "gray.pkg.slp")
    assert done.embedded_frames == len(original) == len(packed) == 90 and not (moved / "gray.mp4").exists()
    for i in (0, 45, 89):
        assert packed.frames[i].frame_idx == original.frames[i].frame_idx
        np.testing.assert_array_equal(packed.frames[i].points, original.frames[i].points)
        difference = np.abs(packed.image(i).astype(int) - original.image(i).astype(int))
        assert difference.max() <= 1 and packed.image(i).std() > 0
    run = subprocess.run(
        [
            POSESTREAM,
            "train",
            str(moved / "gray.pkg.slp"),
            "-o",
            str(tmp_path / "run"),
            "--profile",
            "bottomup",
            "--max-epochs",
            "1",
            "--quiet",
            "--set",
            "backbone.filters=4",
            "--set",
            "backbone.max_stride=8",
            "--set",
            "data.input_scale=0.5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0 and (tmp_path / "run" / "best.pt").exists(), run.stderr


def test_pack_errors_name_the_fix(tmp_path, synth_gray):
    out, _ = synth_gray
    result = subprocess.run(
        [POSESTREAM, "pack", str(out.slp), "-o", str(tmp_path / "x.slp")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "NAME.pkg.slp" in result.stderr
    result = subprocess.run(
        [
            POSESTREAM,
            "pack",
            str(out.slp),
            "-o",
            str(tmp_path / "x.pkg.slp"),
            "--video-path",
            str(tmp_path / "gone.mp4"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "gone.mp4" in result.stderr and not (tmp_path / "x.pkg.slp").exists()


def test_ground_truth_in_an_analysis_h5_trains_without_an_slp(synth_gray):
    """synth's OUT.analysis.h5 as training labels: every animal of every frame, images from its video."""
    clip, config = synth_gray
    labels = load_labels(clip.analysis_h5, frames="0-9")
    assert len(labels) == 10 and all(len(f.points) == config.animals for f in labels.frames)
    assert Path(labels.video_paths[0]).resolve() == clip.video.resolve()
    assert labels.image(3).shape == (config.height, config.width, 1)
