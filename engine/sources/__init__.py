"""Frame sources: video files (PyAV) and HDF5 video datasets, and ``open_source``, which picks one by
suffix."""

from __future__ import annotations

import os

from posestream.engine.sources.base import HDF5_SUFFIXES, Color, FrameSource
from posestream.engine.sources.hdf5_dataset import HDF5DatasetReader
from posestream.engine.sources.video_file import VideoFileReader


def open_source(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    layout: str = "channels_last",
    color: Color = "auto",
    threads: int = 0,
    hwaccel: str | None = None,
    channels: int | None = None,
) -> FrameSource:
    """Open a video file (PyAV) or an HDF5 video dataset by file suffix.

    dataset/layout apply to HDF5 files; threads and hwaccel ("cuda:N": NVDEC when it can) to video files.
    channels: what the model takes (1 gray, 3 RGB); a video of the other kind is converted, and the
    source's ``converted`` says so ("RGB frames converted to gray").
    """
    source = _open(os.fspath(path), dataset, layout, color, threads, hwaccel)
    if channels is None or source.metadata.channels == channels:
        return source
    source.close()
    source = _open(os.fspath(path), dataset, layout, "gray" if channels == 1 else "rgb", threads, hwaccel)
    source.converted = "RGB frames converted to gray" if channels == 1 else "gray frames converted to RGB"
    return source


def _open(path: str, dataset, layout: str, color: Color, threads: int, hwaccel: str | None) -> FrameSource:
    if path.lower().endswith(HDF5_SUFFIXES):
        return HDF5DatasetReader(path, dataset=dataset, layout=layout, color=color)
    return VideoFileReader(path, color=color, threads=threads, hwaccel=hwaccel)


__all__ = ["FrameSource", "HDF5DatasetReader", "VideoFileReader", "open_source"]
