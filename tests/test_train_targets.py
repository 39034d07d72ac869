"""Confidence maps and PAFs against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
from posestream.train.targets import confidence_maps, instance_anchors, part_affinity_fields


def test_confidence_map_values():
    points = np.array([[[4.0, 2.0]]])  # one instance, one node at x=4, y=2
    maps = confidence_maps(points, (4, 4), stride=2, sigma=1.0)  # cells at 0, 2, 4, 6
    assert maps.shape == (1, 4, 4)
    assert maps[0, 1, 2] == pytest.approx(1.0)  # (y=2, x=4)
    assert maps[0, 1, 1] == pytest.approx(np.exp(-2.0))  # 2 px away: exp(-4 / 2)
    assert maps[0, 2, 3] == pytest.approx(np.exp(-4.0))  # dx=2, dy=2: exp(-8 / 2)


def test_confidence_maps_take_the_max_over_instances_and_ignore_missing():
    points = np.array([[[0.0, 0.0], [np.nan, np.nan]], [[0.0, 2.0], [6.0, 6.0]]])
    maps = confidence_maps(points, (4, 4), stride=2, sigma=1.0)
    assert maps[0, 0, 0] == pytest.approx(1.0) and maps[0, 1, 0] == pytest.approx(1.0)
    assert maps[1, 3, 3] == pytest.approx(1.0)
    assert maps[1].sum() == pytest.approx(confidence_maps(points[1:, 1:], (4, 4), 2, 1.0).sum())


def test_paf_band_and_direction():
    points = np.array([[[0.0, 0.0], [8.0, 0.0]]])  # horizontal edge, length 8
    pafs = part_affinity_fields(points, np.array([[0, 1]]), (3, 6), stride=2, width=1.0)
    assert pafs.shape == (2, 3, 6)
    np.testing.assert_allclose(pafs[0, 0], [1, 1, 1, 1, 1, 0])  # x component along the edge, x = 0..8
    np.testing.assert_allclose(pafs[1], 0)  # no y component
    np.testing.assert_allclose(pafs[:, 1:], 0)  # 2 px off the line is outside width 1


def test_pafs_average_where_instances_overlap():
    points = np.array([[[0.0, 0.0], [4.0, 0.0]], [[0.0, 0.0], [0.0, 4.0]]])
    pafs = part_affinity_fields(points, np.array([[0, 1]]), (3, 3), stride=2, width=0.5)
    assert pafs[0, 0, 0] == pytest.approx(0.5) and pafs[1, 0, 0] == pytest.approx(0.5)  # origin: both
    assert pafs[0, 0, 2] == pytest.approx(1.0) and pafs[1, 2, 0] == pytest.approx(1.0)


def test_anchors_fall_back_to_the_bounding_box_centre():
    points = np.array([[[0.0, 0.0], [4.0, 2.0], [np.nan, np.nan]], [[1.0, 1.0], [3.0, 5.0], [9.0, 9.0]]])
    np.testing.assert_allclose(instance_anchors(points, None), [[2.0, 1.0], [5.0, 5.0]])
    np.testing.assert_allclose(instance_anchors(points, 2), [[2.0, 1.0], [9.0, 9.0]])
