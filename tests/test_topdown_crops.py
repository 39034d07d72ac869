"""Top-down crops around anchors, in each tool's convention (engine/model/topdown.py)."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engine.model.topdown import crops_around


def ramp(height: int = 40, width: int = 50) -> np.ndarray:
    """A frame whose value is 2x + 3y (plus 10): bilinear samples of it are exact.  # (1, H, W, 1)"""
    y, x = np.mgrid[0:height, 0:width]
    return (10 + 2 * x + 3 * y).astype(np.uint8)[None, :, :, None]


@pytest.mark.parametrize(
    "convention, origin, offset", [("posestream", (7, 11), (7.0, 11.0)), ("sleap_nn", (6, 11), (6.7, 11.2))]
)
def test_whole_pixel_crops_start_where_each_tool_starts_them(convention, origin, offset):
    frames = ramp()
    crops, offsets, frame_of = crops_around(frames, [np.array([[10.2, 14.7]])], (8, 8), convention)
    assert crops.shape == (1, 8, 8, 1) and frame_of.tolist() == [0]
    np.testing.assert_allclose(offsets[0], offset)
    x0, y0 = origin
    np.testing.assert_array_equal(crops[0, :, :, 0], frames[0, y0 : y0 + 8, x0 : x0 + 8, 0])


def test_sleap_crops_are_bilinear_samples_truncated_and_moved_back_half_a_pixel():
    frames = ramp()
    crops, offsets, _ = crops_around(frames, [np.array([[10.2, 14.7], [1.0, 1.0]])], (8, 8), "sleap")
    x0, y0 = 10.2 - 3.5, 14.7 - 3.5
    rows, cols = np.mgrid[0:8, 0:8]
    exact = 10 + 2 * (x0 + cols) + 3 * (y0 + rows)
    # truncated, as SLEAP casts them (a sample a rounding error under an integer loses that integer)
    assert np.all(
        (crops[0, :, :, 0] >= np.floor(exact - 1e-6)) & (crops[0, :, :, 0] <= np.floor(exact + 1e-6))
    )
    np.testing.assert_allclose(offsets[0], (x0 - 0.5, y0 - 0.5))
    assert crops[1, 0, 0, 0] == 0  # samples outside the frame are zero
