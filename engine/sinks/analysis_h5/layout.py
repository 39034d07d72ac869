"""SLEAP analysis HDF5: the layout that the writer, the reader and the recovery share.

Layout (SLEAP's "matlab" preset, which SLEAP, sleap-io and MATLAB read):

    tracks            (n_tracks, 2, n_nodes, n_frames) float32  x/y, NaN where absent
    track_occupancy   (n_frames, n_tracks)             uint8    1 where the track has an instance
    point_scores      (n_tracks, n_nodes, n_frames)    float32
    instance_scores   (n_tracks, n_frames)             float32
    tracking_scores   (n_tracks, n_frames)             float32
    track_names       (n_tracks,)                      bytes    "track_<id>"
    node_names        (n_nodes,)                       bytes
    edge_names        (n_edges, 2)                     bytes
    edge_inds         (n_edges, 2)                     int32
    video_path, labels_path, provenance (JSON)         scalar strings
    frame_status      (n_frames,)                      uint8    posestream's own: 0 not processed,
                                                                1 done, 2 missing (failed to decode),
                                                                3 dropped (a live camera's frame that got
                                                                no poses: the engine was behind)

Recordings of live cameras (``live=True``) also hold, per frame:

    camera_counter    (n_frames,)                      int64    the camera's own frame number (-1: none)
    frame_times       (n_frames, n_stages)             int64    monotonic ns when each stage was done with
                                                                the frame (attribute ``stages`` names them:
                                                                capture, send, receive, ..., publish); 0:
                                                                never

Each array dataset carries a ``dims`` attribute naming its axes (as sleap-io
writes it). Frame ``i`` of the video is column ``i``; frames outside the
processed range are NaN with status 0.

Track slots: one per identity (tracked layout) or per instance of a frame in order (untracked
layout), as ``sinks/slots.py`` assigns them.

Reading, an instance's track id is its slot's index; -1 in an ``untracked_<k>``
slot, and in every slot of an untracked-layout file (its slots are not
identities; the file attribute ``tracked`` says which layout a file has).

Streaming and crash safety: datasets are chunked and resizable along frames
and tracks; the writer keeps at most ``flush_every`` frames in memory, appends
them as one block and flushes. The file is written in HDF5's single-writer /
multiple-reader (SWMR) mode, which keeps it consistent on disk at every flush:
if the process is killed, the frames flushed so far can be read back.
``read_analysis_h5`` opens such a file; ``recover_analysis_h5`` rewrites it as
a plain file that any HDF5 tool opens (``h5clear -s FILE`` also works).
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

FRAME_NOT_PROCESSED, FRAME_DONE, FRAME_MISSING, FRAME_DROPPED = 0, 1, 2, 3

# Stored axis order of each array (SLEAP's "matlab" preset).
DIMS = {
    "tracks": ("track", "xy", "node", "frame"),
    "track_occupancy": ("frame", "track"),
    "point_scores": ("track", "node", "frame"),
    "instance_scores": ("track", "frame"),
    "tracking_scores": ("track", "frame"),
}
# Axis order the reader returns (frame first, as Python code indexes it).
FRAME_FIRST = {
    "tracks": ("frame", "track", "node", "xy"),
    "track_occupancy": ("frame", "track"),
    "point_scores": ("frame", "track", "node"),
    "instance_scores": ("frame", "track"),
    "tracking_scores": ("frame", "track"),
}
NAME_DTYPE = "S64"

LIBVER = ("v110", "v110")  # the oldest format with SWMR: readable by HDF5 >= 1.10


def encode(strings: Any) -> np.ndarray:
    return np.array([s.encode("utf-8") for s in np.ravel(strings)], dtype=np.bytes_)


def stored_dims(ds: h5py.Dataset, name: str) -> tuple[str, ...]:
    return tuple(json.loads(attr_str(ds.attrs["dims"]))) if "dims" in ds.attrs else DIMS[name]


def frame_first(ds: h5py.Dataset, name: str, stored: tuple[str, ...], start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) of a dataset, transposed from its stored axes to frame-first."""
    index = tuple(slice(start, stop) if axis == "frame" else slice(None) for axis in stored)
    data = ds[index].transpose([stored.index(axis) for axis in FRAME_FIRST[name]])
    return data.astype(bool) if name == "track_occupancy" else data


def decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def attr_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def scalar_str(f: h5py.File, name: str) -> str:
    return attr_str(f[name][()]) if name in f else ""
