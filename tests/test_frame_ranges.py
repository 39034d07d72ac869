"""Frame range parsing: inclusive ranges, merging, open ends, and errors."""

from __future__ import annotations

import pytest

from posestream.engine import ConfigError, FrameIndexError, FrameRanges


def test_parse_inclusive_ranges_and_single_frames():
    ranges = FrameRanges.parse("0-3, 10, 20-21")
    assert list(ranges) == [0, 1, 2, 3, 10, 20, 21]
    assert len(ranges) == 7
    assert str(ranges) == "0-3,10,20-21"


def test_overlapping_and_touching_ranges_merge():
    assert FrameRanges.parse("5-9,0-4,7-12").spans == ((0, 13),)


def test_open_end_resolves_to_video_length():
    ranges = FrameRanges.parse("0-1,95-")
    assert 1000 in ranges and 50 not in ranges
    assert list(ranges.resolve(98)) == [0, 1, 95, 96, 97]
    with pytest.raises(ValueError, match="resolve"):
        len(ranges)


@pytest.mark.parametrize("text", ["", "a-b", "5-2", "-3", "1-2-3"])
def test_bad_ranges_are_config_errors(text):
    with pytest.raises(ConfigError, match="frame range"):
        FrameRanges.parse(text)


def test_ranges_past_the_end_are_frame_index_errors():
    with pytest.raises(FrameIndexError, match="100-200 is outside v.mp4, which has 150 frames"):
        FrameRanges.parse("100-200").resolve(150, "v.mp4")


def test_part_takes_positions_of_the_selection_across_spans():
    selection = FrameRanges.parse("0-3,10-12,20-").resolve(25)  # 4 + 3 + 5 frames
    assert list(selection.part(0, 2)) == [0, 1]
    assert list(selection.part(3, 8)) == [3, 10, 11, 12, 20]
    assert list(selection.part(7, 100)) == [20, 21, 22, 23, 24]
    parts = [selection.part(a, b) for a, b in [(0, 4), (4, 8), (8, 12)]]
    assert [i for p in parts for i in p] == list(selection)
    with pytest.raises(ValueError, match="select none"):
        selection.part(12, 14)
    with pytest.raises(ValueError, match="resolve"):
        FrameRanges.parse("5-").part(0, 2)


def test_a_source_without_frames_says_so():
    """A 0-frame HDF5 video said "frame range 0--1 ... has 0 frames (0--1)", before."""
    with pytest.raises(FrameIndexError, match=r"^v\.h5 has no frames: nothing to run") as error:
        FrameRanges.all().resolve(0, "v.h5")
    assert "--1" not in str(error.value)
