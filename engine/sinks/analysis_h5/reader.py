"""Reading SLEAP analysis HDF5 files, ours and SLEAP's, also one whose writer was killed (read as SWMR)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from posestream.core.errors import OutputFileError
from posestream.engine.sinks.analysis_h5.layout import (
    DIMS,
    FRAME_DONE,
    FRAME_MISSING,
    FRAME_NOT_PROCESSED,
    attr_str,
    decode,
    frame_first,
    scalar_str,
    stored_dims,
)
from posestream.engine.sinks.slots import UNTRACKED_SLOT_PREFIX
from posestream.engine.types import UNTRACKED, FramePredictions, Skeleton


@dataclass
class AnalysisData:
    """Contents of an analysis HDF5 file, frame axis first.

    tracks: (n_frames, n_tracks, n_nodes, 2); track_occupancy: (n_frames, n_tracks) bool;
    point_scores: (n_frames, n_tracks, n_nodes); instance_scores, tracking_scores:
    (n_frames, n_tracks); frame_status: (n_frames,) (all FRAME_DONE for files
    posestream did not write).
    """

    tracks: np.ndarray
    track_occupancy: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    tracking_scores: np.ndarray
    frame_status: np.ndarray
    track_names: list[str]
    skeleton: Skeleton
    video_path: str = ""
    labels_path: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    tracked: bool = True  # slots are identities (False: posestream's untracked layout)

    @property
    def n_frames(self) -> int:
        return self.tracks.shape[0]

    def frame(self, frame_idx: int) -> FramePredictions:
        """The instances of one frame, with their slot as track id (-1 where slots are not identities)."""
        ids = slot_track_ids(self.track_names, self.tracks.shape[1], self.tracked)
        return _frame_at(self.__dict__, frame_idx, frame_idx, ids)


class AnalysisH5Reader:
    """An analysis HDF5 file (ours or SLEAP's) opened for reading: its metadata at once, its frames on demand.

    ``read()`` loads frame-first arrays; ``iter_frames()`` streams FramePredictions a block at a time,
    so a long file is read in bounded memory.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._file = open_analysis_h5(self.path)
        try:
            self._read_metadata()
        except BaseException:
            self._file.close()
            raise

    def _read_metadata(self) -> None:
        f = self._file
        missing = [name for name in ("tracks", "track_occupancy", "node_names") if name not in f]
        if missing:
            raise OutputFileError(f"{self.path}: not a SLEAP analysis HDF5 file (no {', '.join(missing)})")
        self._dims = {name: stored_dims(f[name], name) for name in DIMS}
        nodes = decode(f["node_names"][:])
        edges = f["edge_inds"][:].reshape(-1, 2).tolist() if "edge_inds" in f else []
        symmetries = json.loads(attr_str(f.attrs.get("skeleton_symmetries", "[]")))
        self.skeleton = Skeleton.from_names(
            nodes,
            [(nodes[a], nodes[b]) for a, b in edges],
            [tuple(s) for s in symmetries],
            name=attr_str(f.attrs.get("skeleton_name", "")) or "skeleton",
        )
        tracks = f["tracks"]
        self.n_frames = tracks.shape[self._dims["tracks"].index("frame")]
        self.n_tracks = tracks.shape[self._dims["tracks"].index("track")]
        self.track_names = decode(f["track_names"][:]) if "track_names" in f else []
        self.tracked = bool(f.attrs.get("tracked", True)) and bool(self.track_names)  # slots are identities
        self.video_path = scalar_str(f, "video_path")
        self.labels_path = scalar_str(f, "labels_path")
        self.provenance = json.loads(scalar_str(f, "provenance") or "{}")

    def __len__(self) -> int:
        """Frames ``iter_frames()`` yields: those processed (every frame of a file posestream did not
        write)."""
        if "frame_status" not in self._file:
            return self.n_frames
        return int(np.count_nonzero(self._file["frame_status"][:] != FRAME_NOT_PROCESSED))

    def frame_status(self) -> np.ndarray:
        """(n_frames,) uint8: each frame's status (FRAME_DONE for every frame of a file posestream did not
        write)."""
        f = self._file
        return f["frame_status"][:] if "frame_status" in f else np.full(self.n_frames, FRAME_DONE, np.uint8)

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Frames [start, stop) of every array, frame axis first, with ``frame_status``."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        f = self._file
        arrays = {name: frame_first(f[name], name, self._dims[name], start, stop) for name in DIMS}
        arrays["frame_status"] = (
            f["frame_status"][start:stop]
            if "frame_status" in f
            else np.full(stop - start, FRAME_DONE, np.uint8)
        )
        return arrays

    def iter_frames(self, block: int = 1024, processed_only: bool = True) -> Iterator[FramePredictions]:
        """Every frame in order (only those processed, by default), ``block`` frames read at a time."""
        ids = slot_track_ids(self.track_names, self.n_tracks, self.tracked)
        for start in range(0, self.n_frames, block):
            arrays = self.read(start, start + block)
            for frame_idx in range(start, start + len(arrays["frame_status"])):
                if not processed_only or arrays["frame_status"][frame_idx - start] != FRAME_NOT_PROCESSED:
                    yield _frame_at(arrays, frame_idx - start, frame_idx, ids)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AnalysisH5Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def slot_track_ids(track_names: list[str], n_tracks: int, tracked: bool = True) -> np.ndarray:
    """Track id of each slot: its index, or -1 for the tracked layout's untracked slots and for every slot
    of an untracked file.  # (n_tracks,)"""
    if not tracked:
        return np.full(n_tracks, UNTRACKED, np.int32)
    ids = np.arange(n_tracks, dtype=np.int32)
    for slot, name in enumerate(track_names[:n_tracks]):
        if name.startswith(UNTRACKED_SLOT_PREFIX):
            ids[slot] = UNTRACKED
    return ids


def _frame_at(
    arrays: dict[str, np.ndarray], row: int, frame_idx: int, slot_ids: np.ndarray
) -> FramePredictions:
    """FramePredictions of row ``row`` of frame-first arrays (frame ``frame_idx``)."""
    slots = np.flatnonzero(arrays["track_occupancy"][row])
    return FramePredictions(
        frame_idx=frame_idx,
        points=arrays["tracks"][row, slots],
        point_scores=arrays["point_scores"][row, slots],
        instance_scores=arrays["instance_scores"][row, slots],
        track_ids=slot_ids[slots],
        tracking_scores=arrays["tracking_scores"][row, slots],
        missing=bool(arrays["frame_status"][row] == FRAME_MISSING),
    )


def open_analysis_h5(path: str | os.PathLike) -> h5py.File:
    """Open for reading, also a file whose writer was killed (read it as SWMR)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such analysis HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "already open for write" not in str(exc):
            raise OutputFileError(f"{path}: not a readable HDF5 file ({exc})") from exc
    # Left open for writing: a writer that was killed, or one still running.
    return h5py.File(path, "r", swmr=True)


def read_analysis_h5(path: str | os.PathLike) -> AnalysisData:
    """Load an analysis HDF5 file (ours or SLEAP's) into frame-first arrays."""
    with AnalysisH5Reader(path) as reader:
        return AnalysisData(
            **reader.read(),
            track_names=reader.track_names,
            skeleton=reader.skeleton,
            video_path=reader.video_path,
            labels_path=reader.labels_path,
            provenance=reader.provenance,
            tracked=reader.tracked,
        )
