"""HDF5 video datasets as a frame source (channels_last, channels_first, gray)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from posestream.engine import (
    FrameRanges,
    HDF5DatasetReader,
    VideoFileReader,
    VideoNotFoundError,
    VideoOpenError,
    open_source,
)


@pytest.fixture(scope="module")
def frames_nhwc():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (23, 12, 16, 3), dtype=np.uint8)  # (N, H, W, C)


@pytest.fixture
def h5_video(tmp_path, frames_nhwc):
    path = tmp_path / "video.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("box/last", data=frames_nhwc, chunks=(4, 12, 16, 3))
        f.create_dataset("box/first", data=frames_nhwc.transpose(0, 3, 1, 2))
        f.create_dataset("box/gray", data=frames_nhwc[..., 0])
        f.create_dataset("labels", data=np.arange(5.0))
    return path


def test_channels_last(h5_video, frames_nhwc):
    with open_source(h5_video, dataset="box/last") as reader:
        assert isinstance(reader, HDF5DatasetReader)
        assert reader.metadata.frame_shape == (12, 16, 3) and len(reader) == 23
        got = dict(reader.iter_frames())
    np.testing.assert_array_equal(np.stack([got[i] for i in range(23)]), frames_nhwc)


def test_channels_first_matches_channels_last(h5_video, frames_nhwc):
    with HDF5DatasetReader(h5_video, dataset="box/first", layout="channels_first") as reader:
        assert reader.metadata.frame_shape == (12, 16, 3)
        np.testing.assert_array_equal(reader.read(7), frames_nhwc[7])
        got = list(reader.iter_frames(FrameRanges.parse("2-5,20-")))
    assert [i for i, _ in got] == [2, 3, 4, 5, 20, 21, 22]
    np.testing.assert_array_equal(got[-1][1], frames_nhwc[22])


def test_gray_dataset_and_colour_conversion(h5_video, frames_nhwc):
    with HDF5DatasetReader(h5_video, dataset="box/gray") as reader:
        assert reader.metadata.channels == 1
        np.testing.assert_array_equal(reader.read(3)[..., 0], frames_nhwc[3, ..., 0])
    with HDF5DatasetReader(h5_video, dataset="box/gray", color="rgb") as reader:
        assert reader.read(3).shape == (12, 16, 3)
    with HDF5DatasetReader(h5_video, dataset="box/last", color="gray") as reader:
        expected = np.rint(frames_nhwc[3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        np.testing.assert_array_equal(reader.read(3)[..., 0], expected.astype(np.uint8))


def test_dataset_errors(h5_video, tmp_path):
    with pytest.raises(VideoNotFoundError, match="no dataset 'box/nope'.*box/last"):
        HDF5DatasetReader(h5_video, dataset="box/nope")
    with pytest.raises(VideoOpenError, match="cannot tell which dataset"):
        HDF5DatasetReader(h5_video)
    with pytest.raises(VideoOpenError, match="must be uint8"):
        HDF5DatasetReader(h5_video, dataset="labels")
    with pytest.raises(VideoOpenError, match="Is the layout right"):
        HDF5DatasetReader(h5_video, dataset="box/last", layout="channels_first")
    with pytest.raises(VideoNotFoundError, match="missing.h5"):
        HDF5DatasetReader(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(VideoOpenError, match="bad.h5: not a readable HDF5 file"):
        HDF5DatasetReader(bad)


def test_hdf5_copy_of_a_real_video_reads_the_same_frames(tmp_path, sleap_file):
    """Frames stored in HDF5 (as SLEAP exports them) read back identical to the video's."""
    with VideoFileReader(sleap_file("centered_pair_small.mp4")) as video:
        frames = np.stack([image for _, image in video.iter_frames(FrameRanges.parse("0-19"))])
    path = tmp_path / "export.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("video0/video", data=frames)
    with open_source(path) as reader:  # the only image dataset is found without naming it
        np.testing.assert_array_equal(np.stack([im for _, im in reader.iter_frames()]), frames)
