"""Synthetic videos: deterministic, with ground truth that matches the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engine import ConfigError, VideoFileReader, read_analysis_h5
from posestream.engine.synth import SYNTH_SKELETON, PoseSimulator, SynthConfig, write_synthetic_video


def test_same_seed_same_video(tmp_path):
    config = SynthConfig(frames=12, width=96, height=96, animals=2, seed=11)
    a = write_synthetic_video(tmp_path / "a.mp4", config, slp=False, progress=False)
    b = write_synthetic_video(tmp_path / "b.mp4", config, slp=False, progress=False)
    with VideoFileReader(a.video) as ra, VideoFileReader(b.video) as rb:
        for (_, fa), (_, fb) in zip(ra.iter_frames(), rb.iter_frames()):
            np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(
        read_analysis_h5(a.analysis_h5).tracks, read_analysis_h5(b.analysis_h5).tracks
    )
    other = SynthConfig(frames=12, width=96, height=96, animals=2, seed=12)
    assert not np.allclose(next(iter(PoseSimulator(config))), next(iter(PoseSimulator(other))))


def test_ground_truth_files(synth_gray):
    out, cfg = synth_gray
    truth = read_analysis_h5(out.analysis_h5)
    assert truth.tracks.shape == (cfg.frames, cfg.animals, SYNTH_SKELETON.n_nodes, 2)
    assert truth.skeleton == SYNTH_SKELETON
    assert truth.track_occupancy.all()
    assert truth.video_path == str(out.video)
    assert len(SYNTH_SKELETON.nodes) >= 5


def test_slp_labels_match_the_analysis_file(synth_gray):
    sio = pytest.importorskip("sleap_io")
    out, cfg = synth_gray
    labels = sio.load_slp(str(out.slp))
    truth = read_analysis_h5(out.analysis_h5)
    assert len(labels.labeled_frames) == cfg.frames
    assert [n.name for n in labels.skeleton.nodes] == list(SYNTH_SKELETON.nodes)
    assert len(labels.skeleton.symmetries) == 1
    lf = labels.labeled_frames[40]
    points = np.stack([inst.numpy() for inst in sorted(lf.instances, key=lambda i: i.track.name)])
    np.testing.assert_allclose(points, truth.tracks[lf.frame_idx], atol=1e-3)
    assert labels.video.shape[0] == cfg.frames  # sleap-io opens our video


def test_keypoints_sit_on_the_animals(synth_rgb):
    """The pixel under the nose keypoint is animal-bright; far from any animal it is floor."""
    out, cfg = synth_rgb
    truth = read_analysis_h5(out.analysis_h5)
    nose = SYNTH_SKELETON.nodes.index("nose")
    with VideoFileReader(out.video) as reader:
        for idx, image in reader.iter_frames():
            x, y = np.rint(truth.tracks[idx, 0, nose]).astype(int)
            assert image[y, x].astype(int).sum() > 450, f"frame {idx}: nose pixel is not on the animal"
            assert image[2, 2].astype(int).sum() < 400, f"frame {idx}: corner is not floor"


def test_motion_is_smooth_and_stays_in_frame():
    config = SynthConfig(frames=400, width=256, height=192, animals=3, seed=5)
    poses = np.stack(list(PoseSimulator(config)))  # (frames, animals, nodes, 2)
    assert np.isfinite(poses).all()
    assert (poses[..., 0] >= 0).all() and (poses[..., 0] < config.width).all()
    assert (poses[..., 1] >= 0).all() and (poses[..., 1] < config.height).all()
    step = np.linalg.norm(np.diff(poses, axis=0), axis=-1)
    assert step.max() < 0.15 * config.body_length  # no jumps
    assert step.mean() > 0.005 * config.body_length  # they do move


def test_animals_touch_and_cross():
    """Within a few hundred frames two animals come into contact and their paths cross."""
    config = SynthConfig(frames=600, width=256, height=256, animals=2, seed=0)
    poses = np.stack(list(PoseSimulator(config)))
    gap = np.linalg.norm(poses[:, 0, :, None] - poses[:, 1, None, :], axis=-1).min(axis=(1, 2))
    assert (gap < 0.2 * config.body_length).any(), "the animals never touch"
    spine = SYNTH_SKELETON.nodes.index("spine")
    a, b = poses[:, 0, spine], poses[:, 1, spine]
    crossed = any(
        _segments_cross(a[i], a[i + 1], b[j], b[j + 1])
        for i in range(0, len(a) - 1, 2)
        for j in range(0, len(b) - 1, 2)
    )
    assert crossed, "the animals' paths never cross"


@pytest.mark.parametrize("animals, seed", [(2, 7), (2, 201), (3, 5)])
def test_bodies_touch_but_never_overlap(animals, seed):
    """Animals are solid: their bodies (nose to tail base) stay apart, so every keypoint can be seen."""
    config = SynthConfig(frames=300, width=256, height=256, animals=animals, seed=seed)
    poses = np.stack(list(PoseSimulator(config)))  # (frames, animals, nodes, 2)
    body = [SYNTH_SKELETON.nodes.index(n) for n in ("nose", "head", "neck", "spine", "tail_base")]
    for i in range(animals):
        for j in range(i + 1, animals):
            a, b = poses[:, i][:, body], poses[:, j][:, body]  # (frames, 5, 2)
            gap = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1).min(axis=(1, 2))
            assert gap.min() > 0.25 * config.body_length, (
                f"animals {i} and {j} overlap in frame {gap.argmin()}"
            )
            assert gap.min() < 0.4 * config.body_length, f"animals {i} and {j} never come into contact"


def _segments_cross(p1, p2, q1, q2) -> bool:
    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p1, p2, q1) != side(p1, p2, q2) and side(q1, q2, p1) != side(q1, q2, p2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=101), "even"),
        (dict(height=32), "at least 64"),
        (dict(frames=0), "frames"),
        (dict(animals=0), "animals"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig(**kwargs)


def test_perturbed_detections_follow_the_rates_and_give_nothing_away():
    """Jitter, dropped nodes, missing runs and false instances at the rates asked; untracked, shuffled."""
    from posestream.engine.synth import PerturbConfig, Perturber
    from posestream.train.oks import oks_matrix

    config = SynthConfig(frames=2000, width=512, height=512, animals=4, seed=2)
    perturber = Perturber(PerturbConfig(2.0, 0.05, 0.02, 0.01, seed=2), 512, 512, 4)
    true_found = false = dropped = nodes = first_is_animal_0 = 0
    errors = []
    for idx, poses in enumerate(PoseSimulator(config)):
        found = perturber(idx, poses)
        assert (found.track_ids == -1).all()
        oks = oks_matrix(poses, found.points)
        real = oks.max(axis=0) > 0.3 if found.n_instances else np.zeros(0, bool)
        true_found += real.sum()
        false += (~real).sum()
        for k in np.flatnonzero(real):
            truth = poses[oks[:, k].argmax()]
            shown = np.isfinite(found.points[k, :, 0])
            dropped += (~shown).sum()
            nodes += len(shown)
            errors.append(found.points[k, shown] - truth[shown])
        first_is_animal_0 += bool(found.n_instances) and oks[:, 0].argmax() == 0
    total = 2000 * 4
    assert 0.015 < 1 - true_found / total < 0.03  # 2% missing
    assert 0.005 < false / total < 0.02  # 1% false (fragments that land on an animal count as real here)
    assert 0.04 < dropped / nodes < 0.06
    assert 1.8 < np.std(np.concatenate(errors)) < 2.2  # 2 px per coordinate
    assert first_is_animal_0 < 0.4 * 2000  # the order is shuffled (a quarter of frames, by chance)


def grey_at(image: np.ndarray, point: np.ndarray) -> float:
    """The first channel of image (H, W, C) at the pixel nearest point (x, y)."""
    x, y = np.round(point).astype(int)
    return float(image[y, x, 0])


def test_identities_are_told_apart_by_shade_and_marks_in_every_frame(tmp_path):
    """--identities: animal k has the k-th body shade (brighter with k) and dark marks at the nodes its
    identity's bits name, in every frame; the ground truth keeps animal k on track k."""
    from posestream.engine.synth.render import identity_marks

    config = SynthConfig(frames=20, width=256, height=256, animals=4, seed=3, identities=True)
    out = write_synthetic_video(tmp_path / "ids.mp4", config, slp=False, progress=False)
    truth = read_analysis_h5(out.analysis_h5)
    nodes = SYNTH_SKELETON.nodes
    with VideoFileReader(out.video) as video:
        for frame_idx, image in video.iter_frames():
            frame = truth.frame(frame_idx)
            assert frame.track_ids.tolist() == [0, 1, 2, 3]
            shades = []
            for k, points in enumerate(frame.points):
                shades.append(grey_at(image, points[nodes.index("head")]))
                for node in ("neck", "spine", "tail_base"):
                    level, marked = grey_at(image, points[nodes.index(node)]), node in identity_marks(k)
                    assert (level < 70) == marked, (frame_idx, k, node, level)
            assert np.all(np.diff(shades) > 15), (frame_idx, shades)  # 30 grey levels apart, less noise
