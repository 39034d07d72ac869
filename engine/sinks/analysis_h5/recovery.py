"""Recovery of a file left by a killed writer: rewritten as a plain HDF5 file that any HDF5 tool opens."""

from __future__ import annotations

import os

import h5py
import numpy as np

from posestream.engine.sinks.analysis_h5.layout import FRAME_NOT_PROCESSED
from posestream.engine.sinks.analysis_h5.reader import open_analysis_h5


def recover_analysis_h5(path: str | os.PathLike) -> int:
    """Rewrite a file left by a killed writer as a plain HDF5 file; returns frames kept.

    The rewrite goes to a temporary file beside it that then replaces the original,
    so an interruption never loses what the file held.
    """
    path = os.fspath(path)
    tmp = f"{path}.recover.tmp"
    with open_analysis_h5(path) as src, h5py.File(tmp, "w") as dst:
        for name in src:
            src.copy(src[name], dst, name=name)
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        n_frames = int(np.sum(src["frame_status"][:] != FRAME_NOT_PROCESSED)) if "frame_status" in src else 0
    os.replace(tmp, path)
    return n_frames
