"""Peak finding with subpixel refinement, and PAF grouping of peaks into instances."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engine.paf_grouping import GroupingConfig, group_instances
from posestream.engine.peaks import global_peaks, local_peaks


def gaussian_map(points, shape, stride, sigma):
    ys, xs = np.mgrid[: shape[0], : shape[1]] * stride
    maps = [np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in points]
    return np.max(maps, axis=0).astype(np.float32)


def test_global_peaks_refine_to_a_fraction_of_a_cell():
    truth = np.array([[37.3, 21.8], [10.6, 50.1]])
    maps = np.stack([gaussian_map([p], (32, 32), 2, 2.5) for p in truth])[None]  # (1, 2, 32, 32)
    points, scores = global_peaks(maps, stride=2)
    assert np.abs(points[0] - truth).max() < 0.3  # 0.15 of a cell
    assert (scores > 0.9).all()
    points, _ = global_peaks(maps * 0.1, stride=2, threshold=0.2)
    assert np.isnan(points).all()


def test_local_peaks_find_each_animal():
    truth = [(10.0, 12.0), (40.0, 44.0), (50.0, 8.0)]
    maps = gaussian_map(truth, (32, 32), 2, 2.0)[None, None]
    sample, channel, points, scores = local_peaks(maps, stride=2, threshold=0.3)
    assert len(points) == 3 and (sample == 0).all() and (channel == 0).all()
    assert sorted(map(tuple, np.round(points).astype(int).tolist())) == sorted((int(x), int(y)) for x, y in truth)
    assert (np.diff(scores) <= 0).all()


def paf_for(instances, edges, shape, stride, width=2.0):
    """Ideal PAFs of instances (n, n_nodes, 2)."""
    from posestream.train.targets import part_affinity_fields

    return part_affinity_fields(np.asarray(instances, np.float32), np.asarray(edges), shape, stride, width)


@pytest.mark.parametrize("shuffle_seed", range(3))
def test_grouping_recovers_two_animals(shuffle_seed):
    pytest.importorskip("torch")
    edges = np.array([[0, 1], [1, 2]])
    animals = np.array([[[10, 10], [20, 12], [30, 10]], [[12, 40], [22, 38], [32, 42]]], np.float32)
    pafs = paf_for(animals, edges, (32, 32), 2)
    rng = np.random.default_rng(shuffle_seed)
    order = [rng.permutation(2) for _ in range(3)]
    peaks = [animals[o, n] for n, o in enumerate(order)]
    scores = [np.array([0.9, 0.8], np.float32)[o] for o in order]
    points, point_scores, instance_scores = group_instances(peaks, scores, pafs, 2, edges, GroupingConfig())
    assert points.shape == (2, 3, 2) and (instance_scores > 0).all()
    found = sorted(points.tolist(), key=lambda p: p[0][1])
    np.testing.assert_allclose(found, animals)
