"""The online tracker on hand-built sequences, and on perturbed synthetic ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.core.errors import ConfigError
from posestream.engine.synth import PerturbConfig, Perturber, PoseSimulator, SynthConfig
from posestream.engine.tracking import Tracker, TrackerConfig
from posestream.engine.tracking.matching import greedy, hungarian, match
from posestream.engine.types import FramePredictions

FPS = 30.0
# (7, 2) a 40 px animal
BODY = np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0], [20, 6], [20, -6]], float)


def frame(idx: int, centers, scores=None, rng=None, jitter: float = 0.0) -> FramePredictions:
    """Animals of BODY shape at ``centers`` (k, 2), in that order."""
    points = (
        np.stack([BODY - BODY.mean(axis=0) + c for c in np.reshape(centers, (-1, 2))])
        if len(centers)
        else np.zeros((0, len(BODY), 2))
    )
    if jitter:
        points = points + rng.normal(0, jitter, points.shape)
    n = len(points)
    scores = np.ones(n) if scores is None else np.asarray(scores, float)
    return FramePredictions(idx, points, np.ones((n, len(BODY))), scores)


def track(frames, **config) -> list[list[int]]:
    tracker = Tracker(TrackerConfig(**config), fps=FPS)
    return [tracker.update(f).track_ids.tolist() for f in frames]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"kalman": True},
        {"match": "greedy"},
        {"similarity": "centroid"},
        {"similarity": "iou"},
    ],
)
def test_two_animals_crossing_keep_their_identities(config):
    """Two animals walk past each other, side by side (15 px apart at the closest), in shuffled order."""
    rng = np.random.default_rng(0)
    frames, truth = [], []
    for i in range(90):
        a, b = np.array([20 + 3 * i, 100.0]), np.array([290 - 3 * i, 115.0])
        order = rng.permutation(2)
        frames.append(frame(i, np.stack([a, b])[order], rng=rng, jitter=1.0))
        truth.append(order.tolist())  # instance k is animal order[k]
    ids = track(frames, **config)
    animal_to_id = {truth[0][k]: ids[0][k] for k in range(2)}
    for i, (got, animals) in enumerate(zip(ids, truth)):
        assert got == [animal_to_id[a] for a in animals], f"identities swapped at frame {i}"


def test_an_animal_back_within_max_age_keeps_its_identity_and_after_it_gets_a_new_one():
    still, other = [100.0, 100.0], [300.0, 300.0]
    frames = [frame(i, [still, other]) for i in range(10)]
    frames += [frame(i, [other]) for i in range(10, 25)]  # gone for 15 frames = 0.5 s
    frames += [frame(i, [still, other]) for i in range(25, 30)]
    frames += [frame(i, [other]) for i in range(30, 80)]  # gone for 50 frames = 1.67 s
    frames += [frame(i, [still, other]) for i in range(80, 85)]
    ids = track(frames, max_age=1.0)
    first = ids[0][0]
    assert ids[25][0] == first  # back after 0.5 s < max_age
    assert ids[80][0] not in (first, ids[0][1])  # back after 1.67 s > max_age: a new identity
    assert all(row[-1] == ids[0][1] for row in ids)  # the other animal never changes


def test_max_age_is_in_seconds_of_video_time():
    """The same absence in seconds gives the same answer at 15 and at 500 frames per second."""
    for fps in (15.0, 500.0):
        n = int(0.5 * fps)  # 0.5 s away
        frames = (
            [frame(0, [[100.0, 100.0]])] + [frame(i, []) for i in range(1, n)] + [frame(n, [[100.0, 100.0]])]
        )
        tracker = Tracker(TrackerConfig(max_age=1.0), fps=fps)
        ids = [tracker.update(f).track_ids.tolist() for f in frames]
        assert ids[-1] == ids[0] == [0], fps


@pytest.mark.parametrize("kalman", [False, True])
def test_max_tracks_reuses_identities(kalman):
    """Three animals come and go far apart; with max_tracks=2 there are never more than two identities. An
    animal far from every lost identity waits, untracked, until one has been lost for max_age."""
    places = [[50.0, 50.0], [400.0, 50.0], [50.0, 400.0]]
    frames = []
    for i in range(120):
        here = [places[(i // 40 + k) % 3] for k in range(2)]  # which two are in view changes every 40 frames
        frames.append(frame(i, here))
    ids = track(frames, max_tracks=2, max_age=0.5, kalman=kalman)  # 15 frames
    assert {t for row in ids for t in row} == {0, 1, -1}
    assert all(len(set(row)) == len(row) for row in ids)
    for start in (
        40,
        80,
    ):  # the newcomer: untracked while the identity it takes is lost for less than max_age
        newcomer = [row[1] for row in ids[start : start + 40]]
        assert newcomer[:15] == [-1] * 15 and set(newcomer[16:]) == {ids[start - 1][0]}
        # the one that stayed keeps its own
        assert all(row[0] == ids[start - 1][1] for row in ids[start : start + 40])
    free = track(frames, max_age=0.5)
    assert len({t for row in free for t in row}) > 2  # without the limit, new animals get new identities


def test_the_gate_refuses_a_jump_across_the_arena():
    frames = [frame(i, [[100.0 + i, 100.0]]) for i in range(10)] + [frame(10, [[900.0, 700.0]])]
    ids = track(frames)
    assert ids[9] == [0] and ids[10] == [1]  # a new track, not the old one forced across


def test_low_score_instances_never_start_tracks_but_continue_them():
    # the second: low score, no track
    frames = [frame(0, [[100.0, 100.0], [300.0, 100.0]], scores=[0.9, 0.2])]
    # the first continues at low score
    frames += [frame(1, [[101.0, 100.0], [301.0, 100.0]], scores=[0.2, 0.2])]
    tracker = Tracker(TrackerConfig(high_score=0.5), fps=FPS)
    first, second = (tracker.update(f) for f in frames)
    assert first.track_ids.tolist() == [0, -1] and np.isnan(first.tracking_scores[1])
    assert second.track_ids.tolist() == [0, -1]
    assert len(first.points) == 2 and len(second.points) == 2  # untracked instances keep their poses
    assert first.tracking_scores[0] == 0.0 and 0.5 < second.tracking_scores[0] <= 1.0


def test_deterministic_and_bounded_state():
    """Phantoms all over the arena start tracks that are forgotten after max_age: the state stays small."""
    rng = np.random.default_rng(3)
    frames = [
        frame(i, np.vstack([[[100.0 + i % 50, 100.0]], rng.uniform(0, 2000, (2, 2))])) for i in range(600)
    ]
    tracker = Tracker(TrackerConfig(max_age=0.5), fps=FPS)
    held = []
    for f in frames:
        tracker.update(f)
        held.append(len(tracker.track_ids))
    assert tracker.identities > 1000 and max(held) <= 3 * 0.5 * FPS + 1  # 2 phantoms per frame, 0.5 s each
    again = [f.track_ids.copy() for f in frames]
    tracker.reset()
    for f in frames:
        tracker.update(f)
    assert all((a == f.track_ids).all() for a, f in zip(again, frames))


def test_perturbed_ground_truth_keeps_identities():
    """Three synthetic animals, 600 frames, jittered with dropped nodes, missing and false instances."""
    from posestream.train.oks import oks_matrix

    config = SynthConfig(frames=600, width=640, height=640, animals=3, seed=4)
    perturber = Perturber(PerturbConfig(2.0, 0.05, 0.02, 0.01, seed=4), 640, 640, 3)
    tracker = Tracker(fps=config.fps)
    owner: dict[int, set[int]] = {}  # track id -> animals it was given to
    for idx, poses in enumerate(PoseSimulator(config)):
        found = tracker.update(perturber(idx, poses))
        oks = oks_matrix(poses, found.points)
        for k in np.flatnonzero(found.track_ids >= 0):
            if oks[:, k].max() > 0.5:
                owner.setdefault(int(found.track_ids[k]), set()).add(int(oks[:, k].argmax()))
    assert all(len(animals) == 1 for animals in owner.values()), owner  # no track ever holds two animals


def test_frames_out_of_order_and_bad_settings_are_clear_errors():
    tracker = Tracker(fps=FPS)
    tracker.update(frame(5, [[0.0, 0.0]]))
    with pytest.raises(ValueError, match="time order"):
        tracker.update(frame(4, [[0.0, 0.0]]))
    with pytest.raises(ConfigError, match="frame rate"):
        Tracker(fps=0)
    with pytest.raises(ConfigError, match="--similarity must be one of oks, centroid, iou"):
        TrackerConfig(similarity="mahalanobis")
    with pytest.raises(ConfigError, match="--max-tracks must be at least 1"):
        TrackerConfig(max_tracks=0)
    with pytest.raises(ConfigError, match="--match"):
        TrackerConfig(match="auction")


def test_matching_respects_the_gate_and_maximizes_total_similarity():
    similarity = np.array([[0.9, 0.8], [0.85, 0.05]])
    assert sorted(hungarian(np.where(similarity >= 0.1, similarity, -1))) == [(0, 1), (1, 0)]  # 1.65 > 0.9
    assert greedy(np.where(similarity >= 0.1, similarity, -1)) == [(0, 0)]  # best pair first; (1, 1) gated
    assert match(similarity, 0.95, "hungarian") == []
    preference = np.array([[0.1, 0.8], [0.85, 0.05]])
    assert sorted(match(similarity, 0.1, "hungarian", preference)) == [(0, 1), (1, 0)]
