"""The engine's postprocessing kernels, compiled ahead of time and by numba's JIT, against the pure-numpy
reference (tests/reference_postprocess.py)."""

from __future__ import annotations

import numpy as np
import pytest
import reference_postprocess as ref

from posestream.engine import kernels
from posestream.engine.model.paf_grouping import GroupingConfig, group_batch, pair_dots
from posestream.engine.model.peaks import NOT_A_PEAK, PeakCandidates, find_candidates, refine_candidates


@pytest.fixture(autouse=True, params=["ahead of time", "jit"])
def compiled(request, monkeypatch):
    """Every test here runs on both compilations of the kernels (the process's choice is swapped for the
    test)."""
    if request.param == "jit":
        monkeypatch.setattr(kernels, "_loaded", kernels.jit_kernels())
    else:
        try:
            monkeypatch.setattr(kernels, "_loaded", kernels.ahead_of_time_kernels()[0])
        except kernels.KernelBuildError as exc:
            pytest.skip(f"no ahead-of-time kernels here: {exc}")
    return request.param


def random_maps(seed: int, shape=(2, 3, 20, 17)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    maps = rng.random(shape).astype(np.float32) ** 4  # many small local maxima, a few high ones
    maps[0, 0, 5:7, 5:7] = 2.0  # a plateau: every cell of it is a local maximum
    maps[1, 2, 0, 0] = 3.0  # a peak in the corner
    maps[1, 1] = 0.0  # a flat map: every cell ties
    return maps


def real_peaks(candidates: PeakCandidates) -> dict:
    """(sample, channel, row, col) -> (value, patch) of candidates above NOT_A_PEAK and not tied with the
    K-th."""
    out = {}
    for b, c in np.ndindex(candidates.values.shape[:2]):
        last = candidates.values[b, c, -1]
        for k in np.flatnonzero((candidates.values[b, c] > NOT_A_PEAK) & (candidates.values[b, c] > last)):
            out[(b, c, int(candidates.rows[b, c, k]), int(candidates.cols[b, c, k]))] = (
                float(candidates.values[b, c, k]),
                candidates.patches[b, c, k].tolist(),
            )
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 40])
def test_candidates_equal_the_reference(seed, k):
    maps = random_maps(seed)
    ours, theirs = find_candidates(maps, k, 2), ref.find_candidates(maps, k, 2)
    np.testing.assert_array_equal(ours.values, theirs.values)  # same values, best first
    assert real_peaks(ours) == real_peaks(theirs)
    ranked = ours.values[ours.values > NOT_A_PEAK]
    assert len(ranked) > 0


@pytest.mark.parametrize("seed", range(3))
def test_refined_points_equal_the_reference_within_0_01_px(seed):
    maps = random_maps(seed)
    candidates = ref.find_candidates(maps, 8, 4)
    ours, our_scores = refine_candidates(candidates, 0.3)
    theirs, their_scores = ref.refine_candidates(candidates, 0.3)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, atol=0.01)
    np.testing.assert_array_equal(our_scores, their_scores)
    assert np.isfinite(ours).any() and np.isnan(ours).any()


def test_pair_dots_equal_the_reference():
    rng = np.random.default_rng(0)
    maps = random_maps(1, (2, 4, 24, 24))
    candidates = ref.find_candidates(maps, 6, 2)
    pafs = rng.uniform(-1, 1, (2, 6, 12, 12)).astype(np.float32)
    edges = np.array([[0, 1], [1, 2], [3, 1]])
    np.testing.assert_allclose(
        pair_dots(candidates, pafs, edges, 4), ref.pair_dots(candidates, pafs, edges, 4), atol=1e-5
    )


@pytest.mark.parametrize("threshold", [0.2, 0.6])
def test_a_floor_at_the_threshold_keeps_every_point_and_dot_grouping_reads(threshold):
    """The decoder passes the peak threshold as floor to skip background cells; what survives refinement must
    not change."""
    rng = np.random.default_rng(3)
    maps = random_maps(2, (2, 4, 24, 24))
    pafs = rng.uniform(-1, 1, (2, 6, 12, 12)).astype(np.float32)
    edges = np.array([[0, 1], [1, 2], [3, 1]])
    full, floored = find_candidates(maps, 6, 2), find_candidates(maps, 6, 2, floor=threshold)
    points, _ = refine_candidates(full, threshold)
    floored_points, _ = refine_candidates(floored, threshold)
    np.testing.assert_array_equal(points, floored_points)  # same found points, same slots
    assert np.isfinite(points).any() and np.isnan(points).any()
    dots, floored_dots = pair_dots(full, pafs, edges, 4), pair_dots(floored, pafs, edges, 4, floor=threshold)
    present = ~np.isnan(points[..., 0])  # (B, C, K)
    read = present[:, edges[:, 0], :, None] & present[:, edges[:, 1], None, :]  # (B, E, K, K)
    np.testing.assert_array_equal(floored_dots[read], dots[read])
    assert np.isnan(floored_dots[~read]).all() and read.any() and (~read).any()


@pytest.mark.parametrize("seed", range(6))
def test_grouping_equals_the_reference(seed):
    """Many competing, partly absent candidates and mostly agreeing PAF samples, so connections
    conflict, instances merge and some are cut by max_instances."""
    rng = np.random.default_rng(seed)
    batch, n_nodes, k, n_samples = 3, 5, 6, 10
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [0, 4], [1, 3]])
    cells = rng.integers(0, 40, (batch, n_nodes, k, 2)).astype(np.float32) * 2
    points = cells + rng.uniform(-1, 1, cells.shape).astype(np.float32)
    points[rng.random((batch, n_nodes, k)) < 0.25] = np.nan
    scores = rng.uniform(0.2, 1.0, (batch, n_nodes, k)).astype(np.float32)
    dots = rng.uniform(-0.1, 1.0, (batch, len(edges), k, k, n_samples)).astype(np.float32)
    cfg = GroupingConfig(max_edge_length=40.0, max_instances=4)
    found, point_scores, instance_scores, counts = group_batch(points, scores, cells, dots, edges, cfg)
    for b in range(batch):
        theirs = ref.group_instances(points[b], scores[b], cells[b], dots[b], edges, cfg)
        n = counts[b]
        assert n == len(theirs[0])
        np.testing.assert_allclose(found[b, :n], theirs[0], atol=0.01)
        np.testing.assert_array_equal(point_scores[b, :n], theirs[1])
        np.testing.assert_allclose(instance_scores[b, :n], theirs[2], rtol=1e-5)
        assert np.isnan(found[b, n:]).all()
    assert counts.max() == cfg.max_instances  # some frames had more instances than kept
    assert any(np.isnan(found[b, : counts[b]]).any() for b in range(batch))  # and partial instances
