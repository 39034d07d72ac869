"""Peak finding with subpixel refinement, and PAF grouping of peaks into instances."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engine.model.paf_grouping import GroupingConfig, group_batch, pair_dots
from posestream.engine.model.peaks import find_candidates, refine_candidates


def gaussian_map(points, shape, stride, sigma):
    ys, xs = np.mgrid[: shape[0], : shape[1]] * stride
    maps = [np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in points]
    return np.max(maps, axis=0).astype(np.float32)


def global_peaks(maps, stride, threshold=0.0):
    """The best candidate of each channel (K = 1, as single-instance models decode): (B, C, 2), (B, C)."""
    points, scores = refine_candidates(find_candidates(maps, 1, stride), threshold)
    return points[:, :, 0], scores[:, :, 0]


def test_global_peaks_refine_to_a_fraction_of_a_cell():
    truth = np.array([[37.3, 21.8], [10.6, 50.1]])
    maps = np.stack([gaussian_map([p], (32, 32), 2, 2.5) for p in truth])[None]  # (1, 2, 32, 32)
    points, scores = global_peaks(maps, stride=2)
    assert np.abs(points[0] - truth).max() < 0.3  # 0.15 of a cell
    assert (scores > 0.9).all()
    points, _ = global_peaks(maps * 0.1, stride=2, threshold=0.2)
    assert np.isnan(points).all()


def test_candidates_find_each_animal_best_first():
    truth = [(10.0, 12.0), (40.0, 44.0), (50.0, 8.0)]
    maps = np.max([h * gaussian_map([p], (32, 32), 2, 2.0) for h, p in zip([1.0, 0.9, 0.8], truth)], axis=0)
    maps = maps[None, None]  # (1, 1, 32, 32): three peaks of heights 1, 0.9, 0.8
    points, scores = refine_candidates(find_candidates(maps, 5, stride=2), threshold=0.3)
    assert points.shape == (1, 1, 5, 2)
    found = points[0, 0][~np.isnan(points[0, 0, :, 0])]
    np.testing.assert_allclose(found, truth, atol=0.3)  # best first: the order of the heights
    assert np.isnan(points[0, 0, 3:]).all() and (np.diff(scores[0, 0]) <= 0).all()


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
    heights = rng.uniform(0.5, 1.0, size=(2, 3))  # which animal's peak ranks first varies per node
    maps = np.stack(
        [
            np.max(
                [h * gaussian_map([p], (32, 32), 2, 2.0) for h, p in zip(heights[:, n], animals[:, n])],
                axis=0,
            )
            for n in range(3)
        ]
    )[None]  # (1, 3, 32, 32)
    candidates = find_candidates(maps, 4, stride=2)
    points, scores = refine_candidates(candidates, threshold=0.2)
    dots = pair_dots(candidates, pafs[None], edges, 2)
    found, _, instance_scores, counts = group_batch(
        points, scores, candidates.cell_points(), dots, edges, GroupingConfig()
    )
    assert counts.tolist() == [2] and (instance_scores[0, :2] > 0).all()
    found = sorted(found[0, :2].tolist(), key=lambda p: p[0][1])
    np.testing.assert_allclose(found, animals, atol=0.3)


def test_integral_refinement_is_the_centre_of_mass_of_the_window():
    """SLEAP's and sleap-nn's refinement: the mass of the raw map in the 5x5 cells around the peak
    (a cell three away does not count)."""
    maps = np.zeros((1, 1, 20, 20), np.float32)
    maps[0, 0, 10, 10], maps[0, 0, 10, 11], maps[0, 0, 12, 10], maps[0, 0, 10, 13] = 1.0, 0.5, 0.25, 0.9
    candidates = find_candidates(maps, 1, stride=2)
    points, _ = refine_candidates(candidates, threshold=0.2, maps=maps)
    np.testing.assert_allclose(
        points[0, 0, 0], ((10 + 0.5 / 1.75) * 2, (10 + 2 * 0.25 / 1.75) * 2), rtol=1e-6
    )
    parabola, _ = refine_candidates(candidates, threshold=0.2)
    assert not np.allclose(parabola[0, 0, 0], points[0, 0, 0])


def test_group_by_class_shares_each_nodes_peaks_among_the_classes():
    """Two classes, two nodes: each node's two peaks go to the classes whose maps are highest there (the best
    total, not greedy), one peak per class; a class that gets no node makes no instance."""
    from posestream.engine.model.identity import group_by_class

    points = np.array([[[10, 10], [50, 50]], [[12, 12], [np.nan, np.nan]]], np.float32)  # (C=2, K=2, 2)
    scores = np.array([[0.9, 0.8], [0.7, np.nan]], np.float32)
    # (n_classes=2, C, K)
    classes = np.array(
        [
            [[0.6, 0.9], [0.2, 0.0]],  # class 0 at node 0's peaks, node 1's peaks
            [[0.5, 0.1], [0.8, 0.0]],
        ],
        np.float32,
    )
    found = group_by_class(points, scores, classes)
    assert found.identities.tolist() == [0, 1]
    # class 0 takes peak 1 of node 0 (0.9 + 0.5 > 0.6 + 0.1)
    np.testing.assert_array_equal(found.points[0, 0], [50, 50])
    np.testing.assert_array_equal(found.points[1, 0], [10, 10])
    assert np.isnan(found.points[0, 1]).all() and (found.points[1, 1] == [12, 12]).all()
    np.testing.assert_allclose(found.identity_scores, [0.9, (0.5 + 0.8) / 2])
    # one node, one peak: one class gets it
    alone = group_by_class(points[:1, :1], scores[:1, :1], classes[:, :1, :1])
    assert alone.identities.tolist() == [0] and (alone.points[0, 0] == [10, 10]).all()
