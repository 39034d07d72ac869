"""The engine's numba postprocessing kernels against the pure-numpy reference (tests/reference_postprocess.py)."""

from __future__ import annotations

import numpy as np
import pytest
import reference_postprocess as ref
from posestream.engine.paf_grouping import pair_dots
from posestream.engine.peaks import NOT_A_PEAK, PeakCandidates, find_candidates, refine_candidates


def random_maps(seed: int, shape=(2, 3, 20, 17)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    maps = rng.random(shape).astype(np.float32) ** 4  # many small local maxima, a few high ones
    maps[0, 0, 5:7, 5:7] = 2.0  # a plateau: every cell of it is a local maximum
    maps[1, 2, 0, 0] = 3.0  # a peak in the corner
    maps[1, 1] = 0.0  # a flat map: every cell ties
    return maps


def real_peaks(candidates: PeakCandidates) -> dict:
    """(sample, channel, row, col) -> (value, patch) of candidates above NOT_A_PEAK and not tied with the K-th."""
    out = {}
    for b, c in np.ndindex(candidates.values.shape[:2]):
        last = candidates.values[b, c, -1]
        for k in np.flatnonzero((candidates.values[b, c] > NOT_A_PEAK) & (candidates.values[b, c] > last)):
            out[(b, c, int(candidates.rows[b, c, k]), int(candidates.cols[b, c, k]))] = (
                float(candidates.values[b, c, k]), candidates.patches[b, c, k].tolist())
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
    np.testing.assert_allclose(pair_dots(candidates, pafs, edges, 4), ref.pair_dots(candidates, pafs, edges, 4), atol=1e-5)
