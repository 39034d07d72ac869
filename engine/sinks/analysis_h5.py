"""SLEAP analysis HDF5: a streaming writer and a reader.

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
                                                                1 done, 2 missing (failed to decode)

Each array dataset carries a ``dims`` attribute naming its axes (as sleap-io
writes it). Frame ``i`` of the video is column ``i``; frames outside the
processed range are NaN with status 0. An instance with a track id goes to
that track's slot; untracked instances fill the free slots of their frame in
order (as sleap-io does), so no instance is dropped.

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
import os
import time
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from ..errors import OutputFileError
from ..types import UNTRACKED, FramePredictions, Skeleton

FRAME_NOT_PROCESSED, FRAME_DONE, FRAME_MISSING = 0, 1, 2

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
_NAME_DTYPE = "S64"
_LIBVER = ("v110", "v110")  # the oldest format with SWMR: readable by HDF5 >= 1.10


class AnalysisH5Writer:
    """Append per-frame predictions to an analysis HDF5 file as they arrive.

    Frames must come in increasing ``frame_idx`` order (gaps are allowed).
    Memory holds at most ``flush_every`` frames; the file is flushed after every
    block and at least every ``flush_seconds`` while frames keep arriving.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        skeleton: Skeleton,
        *,
        video_path: str = "",
        labels_path: str = "",
        provenance: dict[str, Any] | None = None,
        flush_every: int = 256,
        flush_seconds: float = 5.0,
        chunk_frames: int = 1024,
    ):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.path = os.fspath(path)
        self.skeleton = skeleton
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._buffer: list[FramePredictions] = []
        self._last_frame = -1
        self._last_flush = time.monotonic()
        self.frames_written = 0
        try:
            self._file = h5py.File(self.path, "w", libver=_LIBVER)
        except OSError as exc:
            raise OutputFileError(f"{self.path}: cannot create the output file ({exc})") from exc
        try:
            self._create_layout(video_path, labels_path, provenance or {}, chunk_frames)
            self._file.swmr_mode = True
        except BaseException:
            self._file.close()
            raise

    # -- layout -------------------------------------------------------------

    def _create_layout(self, video_path: str, labels_path: str, provenance: dict, chunk_frames: int) -> None:
        f, n_nodes = self._file, self.skeleton.n_nodes
        arrays = {
            "tracks": ((0, 2, n_nodes, 0), np.float32, np.nan, (1, 2, n_nodes, chunk_frames)),
            "track_occupancy": ((0, 0), np.uint8, 0, (chunk_frames, 1)),
            "point_scores": ((0, n_nodes, 0), np.float32, np.nan, (1, n_nodes, chunk_frames)),
            "instance_scores": ((0, 0), np.float32, np.nan, (1, chunk_frames)),
            "tracking_scores": ((0, 0), np.float32, np.nan, (1, chunk_frames)),
        }
        for name, (shape, dtype, fill, chunks) in arrays.items():
            ds = f.create_dataset(
                name, shape=shape, maxshape=tuple(None if d == 0 else d for d in shape),
                dtype=dtype, fillvalue=fill, chunks=chunks, compression="gzip", compression_opts=4,
            )  # fmt: skip
            ds.attrs["dims"] = json.dumps(DIMS[name])
        f.create_dataset("frame_status", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(chunk_frames,))
        f.create_dataset("track_names", shape=(0,), maxshape=(None,), dtype=_NAME_DTYPE, chunks=(256,))
        f.create_dataset("node_names", data=_encode(self.skeleton.nodes))
        f.create_dataset("edge_names", data=_encode(self.skeleton.edge_names).reshape(-1, 2))
        f.create_dataset("edge_inds", data=np.array(self.skeleton.edges, np.int32).reshape(-1, 2))
        f.create_dataset("video_path", data=str(video_path))
        f.create_dataset("labels_path", data=str(labels_path))
        f.create_dataset("video_ind", data=0)
        f.create_dataset("provenance", data=json.dumps(provenance))
        f.attrs["format"] = "analysis"
        f.attrs["preset"] = "matlab"
        f.attrs["skeleton_name"] = self.skeleton.name
        f.attrs["skeleton_symmetries"] = json.dumps(self.skeleton.symmetry_names)
        f.attrs["writer"] = "posestream"

    # -- writing ------------------------------------------------------------

    def write(self, frame: FramePredictions) -> None:
        """Queue one frame's predictions; writes a block when ``flush_every`` are queued."""
        if frame.frame_idx <= self._last_frame:
            raise ValueError(
                f"{self.path}: frames must arrive in increasing order; got frame "
                f"{frame.frame_idx} after {self._last_frame}"
            )
        if frame.n_nodes != self.skeleton.n_nodes:
            raise ValueError(
                f"{self.path}: frame {frame.frame_idx} has {frame.n_nodes} nodes per instance, "
                f"the skeleton has {self.skeleton.n_nodes}"
            )
        self._last_frame = frame.frame_idx
        self._buffer.append(frame)
        if len(self._buffer) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the queued frames and flush the file to disk."""
        if self._buffer:
            block, self._buffer = self._buffer, []
            try:
                self._write_block(block)
            except OSError as exc:
                raise OutputFileError(
                    f"{self.path}: writing frames {block[0].frame_idx}-{block[-1].frame_idx} "
                    f"failed ({exc}). Is the disk full? The frames before them are in the file."
                ) from exc
        self._last_flush = time.monotonic()

    def _write_block(self, block: list[FramePredictions]) -> None:
        first, last = block[0].frame_idx, block[-1].frame_idx
        slots = [_slots(frame) for frame in block]
        n_tracks = max([self._file["tracks"].shape[0], *(int(s.max()) + 1 for s in slots if len(s))])
        self._grow(n_tracks, last + 1)

        n_nodes, width = self.skeleton.n_nodes, last - first + 1
        tracks = np.full((n_tracks, 2, n_nodes, width), np.nan, np.float32)
        point_scores = np.full((n_tracks, n_nodes, width), np.nan, np.float32)
        instance_scores = np.full((n_tracks, width), np.nan, np.float32)
        tracking_scores = np.full((n_tracks, width), np.nan, np.float32)
        occupancy = np.zeros((width, n_tracks), np.uint8)
        status = np.full(width, FRAME_NOT_PROCESSED, np.uint8)
        for frame, slot in zip(block, slots):
            col = frame.frame_idx - first
            status[col] = FRAME_MISSING if frame.missing else FRAME_DONE
            tracks[slot, :, :, col] = frame.points.transpose(0, 2, 1)
            point_scores[slot, :, col] = frame.point_scores
            instance_scores[slot, col] = frame.instance_scores
            tracking_scores[slot, col] = frame.tracking_scores
            occupancy[col, slot] = 1

        f = self._file
        f["tracks"][:, :, :, first : last + 1] = tracks
        f["point_scores"][:, :, first : last + 1] = point_scores
        f["instance_scores"][:, first : last + 1] = instance_scores
        f["tracking_scores"][:, first : last + 1] = tracking_scores
        f["track_occupancy"][first : last + 1, :] = occupancy
        f["frame_status"][first : last + 1] = status
        f.flush()
        self.frames_written += len(block)

    def _grow(self, n_tracks: int, n_frames: int) -> None:
        """Resize every array to at least ``n_tracks`` tracks and ``n_frames`` frames."""
        f = self._file
        old_tracks = f["track_names"].shape[0]
        if n_tracks > old_tracks:
            f["track_names"].resize((n_tracks,))
            f["track_names"][old_tracks:] = _encode([f"track_{i}" for i in range(old_tracks, n_tracks)])
        for name, dims in DIMS.items():
            ds = f[name]
            shape = list(ds.shape)
            shape[dims.index("track")] = max(shape[dims.index("track")], n_tracks)
            shape[dims.index("frame")] = max(shape[dims.index("frame")], n_frames)
            if tuple(shape) != ds.shape:
                ds.resize(tuple(shape))
        if n_frames > f["frame_status"].shape[0]:
            f["frame_status"].resize((n_frames,))

    def close(self) -> None:
        """Write what is queued and close the file (idempotent)."""
        if not self._file.id.valid:
            return
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> AnalysisH5Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _slots(frame: FramePredictions) -> np.ndarray:
    """Track slot of each instance: its track id, or the lowest free slot if untracked.  # (n_instances,)"""
    slots = frame.track_ids.astype(np.int64).copy()
    taken = set(slots[slots != UNTRACKED].tolist())
    if len(taken) != int(np.sum(slots != UNTRACKED)):
        raise ValueError(f"frame {frame.frame_idx}: two instances share a track id {frame.track_ids.tolist()}")
    free = (s for s in range(len(slots) + len(taken)) if s not in taken)
    for i in np.flatnonzero(slots == UNTRACKED):
        slots[i] = next(free)
    return slots


def _encode(strings: Any) -> np.ndarray:
    return np.array([s.encode("utf-8") for s in np.ravel(strings)], dtype=np.bytes_)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


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

    @property
    def n_frames(self) -> int:
        return self.tracks.shape[0]

    def frame(self, frame_idx: int) -> FramePredictions:
        """The instances of one frame, with their track slot as track id."""
        slots = np.flatnonzero(self.track_occupancy[frame_idx])
        return FramePredictions(
            frame_idx=frame_idx,
            points=self.tracks[frame_idx, slots],
            point_scores=self.point_scores[frame_idx, slots],
            instance_scores=self.instance_scores[frame_idx, slots],
            track_ids=slots.astype(np.int32),
            tracking_scores=self.tracking_scores[frame_idx, slots],
            missing=bool(self.frame_status[frame_idx] == FRAME_MISSING),
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
    with open_analysis_h5(path) as f:
        missing = [name for name in ("tracks", "track_occupancy", "node_names") if name not in f]
        if missing:
            raise OutputFileError(f"{path}: not a SLEAP analysis HDF5 file (no {', '.join(missing)})")
        arrays = {name: _frame_first(f[name], name) for name in DIMS}
        n_frames = arrays["tracks"].shape[0]
        status = f["frame_status"][:] if "frame_status" in f else np.full(n_frames, FRAME_DONE, np.uint8)
        nodes = _decode(f["node_names"][:])
        edges = f["edge_inds"][:].reshape(-1, 2).tolist() if "edge_inds" in f else []
        symmetries = json.loads(_attr_str(f.attrs.get("skeleton_symmetries", "[]")))
        skeleton = Skeleton.from_names(
            nodes, [(nodes[a], nodes[b]) for a, b in edges], [tuple(s) for s in symmetries],
            name=_attr_str(f.attrs.get("skeleton_name", "")) or "skeleton",
        )  # fmt: skip
        return AnalysisData(
            **arrays,
            frame_status=status,
            track_names=_decode(f["track_names"][:]) if "track_names" in f else [],
            skeleton=skeleton,
            video_path=_scalar_str(f, "video_path"),
            labels_path=_scalar_str(f, "labels_path"),
            provenance=json.loads(_scalar_str(f, "provenance") or "{}"),
        )


def _frame_first(ds: h5py.Dataset, name: str) -> np.ndarray:
    """Read a dataset and transpose it from its stored axes to frame-first."""
    stored = tuple(json.loads(_attr_str(ds.attrs["dims"]))) if "dims" in ds.attrs else DIMS[name]
    data = ds[:]
    data = data.transpose([stored.index(axis) for axis in FRAME_FIRST[name]])
    return data.astype(bool) if name == "track_occupancy" else data


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _attr_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _scalar_str(f: h5py.File, name: str) -> str:
    return _attr_str(f[name][()]) if name in f else ""


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
