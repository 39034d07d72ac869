"""A predictions file of either format, by its suffix: analysis HDF5 (ours or SLEAP's) or SLEAP labels (.slp).

Both readers give the same things: ``skeleton``, ``video_path`` (as the file names it), ``len()`` (frames
it holds) and ``iter_frames()`` (FramePredictions in frame order, with the file's track ids).
"""

from __future__ import annotations

import os
from pathlib import Path

from posestream.core.errors import ConfigError
from posestream.engine.sinks.analysis_h5 import AnalysisH5Reader
from posestream.engine.sinks.slp import SlpReader

H5_SUFFIXES = (".h5", ".hdf5")


def open_predictions(path: str | os.PathLike) -> AnalysisH5Reader | SlpReader:
    """Open ``path`` for reading; a missing file is a FileNotFoundError, another suffix a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such predictions file")
    if path.suffix.lower() in H5_SUFFIXES:
        return AnalysisH5Reader(path)
    if path.suffix.lower() == ".slp":
        return SlpReader(path)
    raise ConfigError(f"{path}: predictions must be an analysis HDF5 file (.h5) or SLEAP labels (.slp)")


def find_video(video_path: str, beside: str | os.PathLike) -> Path | None:
    """The video a predictions file names: the path itself, or a file of its name beside ``beside``
    (as SLEAP looks for it); None when neither exists."""
    for candidate in (Path(video_path), Path(beside).parent / Path(video_path).name):
        if video_path and candidate.is_file():
            return candidate
    return None
