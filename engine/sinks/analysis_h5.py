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
                                                                1 done, 2 missing (failed to decode),
                                                                3 dropped (a live camera's frame that got
                                                                no poses: the engine was behind)

Recordings of live cameras (``live=True``) also hold, per frame:

    camera_counter    (n_frames,)                      int64    the camera's own frame number (-1: none)
    frame_times       (n_frames, n_stages)             int64    monotonic ns when each stage was done with
                                                                the frame (attribute ``stages`` names them:
                                                                capture, send, receive, ..., publish); 0: never

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
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from posestream.core.errors import DiskFullError, OutputFileError
from posestream.engine.sinks.slots import UNTRACKED_SLOT_PREFIX, TrackSlots
from posestream.engine.sinks.space import check_free_space, release, reserve
from posestream.live.protocol import LIVE_STAGES
from posestream.engine.types import UNTRACKED, FrameBlock, FramePredictions, Skeleton

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
_NAME_DTYPE = "S64"
RESERVE_BYTES = 4 << 20  # free space kept beyond a block's own size: HDF5's chunk rewrites and metadata
NOTHING_MORE = ("nothing more was written: the frames flushed before are in the file; make room, then run again "
                "(posestream batch resumes where it stopped)")  # fmt: skip
_LIBVER = ("v110", "v110")  # the oldest format with SWMR: readable by HDF5 >= 1.10


class AnalysisH5Writer:
    """Append per-frame predictions to an analysis HDF5 file as they arrive.

    Frames must come in increasing ``frame_idx`` order (gaps are allowed).
    Memory holds at most ``flush_every`` frames; the file is flushed after every
    block and at least every ``flush_seconds`` while frames keep arriving.
    ``tracked``: the layout for a tracker's output (see the module docstring). ``live``: also record each
    frame's camera counter and stage times; a missing frame with ``live`` info is a dropped one.
    ``track_names``: names of identities 0, 1, ... (an identity model's classes): the tracked layout, with
    identity i in slot i under its name.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        skeleton: Skeleton,
        *,
        video_path: str = "",
        labels_path: str = "",
        provenance: dict[str, Any] | None = None,
        flush_every: int = 1024,  # = chunk_frames: each chunk is compressed once (17 -> 6 us a frame, measured)
        flush_seconds: float = 5.0,
        chunk_frames: int = 1024,
        tracked: bool = False,
        live: bool = False,
        track_names: Sequence[str] = (),
    ):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.path = os.fspath(path)
        self.skeleton = skeleton
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.tracked, self.live = tracked, live
        self._blocks: list[FrameBlock] = []  # written as one block at the next flush
        self.slots = TrackSlots(tracked, track_names)
        self.tracked = self.slots.tracked
        self._last_frame = -1
        self._n_queued = 0  # frames given since the last flush
        self._last_flush = time.monotonic()
        self.frames_written = 0
        self._failed = False  # a write failed: the file is closed without writing more
        check_free_space(self.path, RESERVE_BYTES, "the new file", "no file was made; free space or write elsewhere")
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
        if self.live:
            f.create_dataset("camera_counter", shape=(0,), maxshape=(None,), dtype=np.int64, fillvalue=-1,
                             chunks=(chunk_frames,))  # fmt: skip
            times = f.create_dataset("frame_times", shape=(0, len(LIVE_STAGES)), maxshape=(None, len(LIVE_STAGES)),
                                     dtype=np.int64, chunks=(chunk_frames, len(LIVE_STAGES)))  # fmt: skip
            times.attrs["stages"] = json.dumps(LIVE_STAGES)
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
        f.attrs["tracked"] = self.tracked

    # -- writing ------------------------------------------------------------

    def write(self, frame: FramePredictions) -> None:
        """Queue one frame's predictions; writes a block when ``flush_every`` are queued."""
        self.write_block(FrameBlock.from_frames([frame], frame.n_nodes))

    def write_block(self, block: FrameBlock) -> None:
        """Queue a block of frames; writes when ``flush_every`` frames are queued."""
        if not len(block):
            return
        self._check_order(int(block.frame_idx[0]), int(block.frame_idx[-1]), block.n_nodes)
        self._blocks.append(block)
        self._n_queued += len(block)
        if self._n_queued >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _check_order(self, first: int, last: int, n_nodes: int) -> None:
        if first <= self._last_frame:
            raise ValueError(f"{self.path}: frames must arrive in increasing order; got frame {first} after "
                             f"{self._last_frame}")  # fmt: skip
        if n_nodes != self.skeleton.n_nodes:
            raise ValueError(f"{self.path}: frame {first} has {n_nodes} nodes per instance, the skeleton has "
                             f"{self.skeleton.n_nodes}")  # fmt: skip
        self._last_frame = last

    def flush(self) -> None:
        """Write the queued frames and flush the file to disk."""
        if self._blocks and not self._failed:
            block, self._blocks, self._n_queued = FrameBlock.concat(self._blocks), [], 0
            frames = f"frames {block.frame_idx[0]}-{block.frame_idx[-1]}"
            needed = RESERVE_BYTES + self._block_bytes(len(block))
            try:
                reserve(self.path, needed, frames, NOTHING_MORE)
                self._write_block(block)
            except DiskFullError:
                self._failed = True
                raise
            except (OSError, RuntimeError) as exc:  # h5py raises either for a failed write
                self._failed = True
                error = DiskFullError if "No space left" in str(exc) else OutputFileError
                raise error(f"{self.path}: writing {frames} failed ({exc}); the frames before them are in the "
                            "file") from exc  # fmt: skip
        self._last_flush = time.monotonic()

    def _block_bytes(self, n_frames: int) -> int:
        """Uncompressed bytes of a block of frames (an upper bound of what it adds to the file)."""
        per_slot = (3 * self.skeleton.n_nodes + 3) * 4  # x, y, score per node; instance and tracking scores
        return n_frames * (max(len(self.slots.names), 1) * per_slot + 2)

    def _write_block(self, block: FrameBlock) -> None:
        first, last = int(block.frame_idx[0]), int(block.frame_idx[-1])
        slot = self.slots.assign(block)  # (M,) every instance of the block at once: its slot and its column
        n_tracks = len(self.slots.names)
        self._grow(n_tracks, last + 1)

        n_nodes, width = self.skeleton.n_nodes, last - first + 1
        tracks = np.full((n_tracks, 2, n_nodes, width), np.nan, np.float32)
        point_scores = np.full((n_tracks, n_nodes, width), np.nan, np.float32)
        instance_scores = np.full((n_tracks, width), np.nan, np.float32)
        tracking_scores = np.full((n_tracks, width), np.nan, np.float32)
        occupancy = np.zeros((width, n_tracks), np.uint8)
        status = np.full(width, FRAME_NOT_PROCESSED, np.uint8)
        dropped = np.array([info is not None for info in block.live], bool) if block.live is not None else False
        status[block.frame_idx - first] = np.where(~block.missing, FRAME_DONE, np.where(dropped, FRAME_DROPPED, FRAME_MISSING))
        if len(slot):
            col = np.repeat(block.frame_idx - first, block.counts)
            tracks[slot, :, :, col] = block.points.transpose(0, 2, 1)
            point_scores[slot, :, col] = block.point_scores
            instance_scores[slot, col] = block.instance_scores
            tracking_scores[slot, col] = block.tracking_scores
            occupancy[col, slot] = 1

        f = self._file
        f["tracks"][:, :, :, first : last + 1] = tracks
        f["point_scores"][:, :, first : last + 1] = point_scores
        f["instance_scores"][:, first : last + 1] = instance_scores
        f["tracking_scores"][:, first : last + 1] = tracking_scores
        f["track_occupancy"][first : last + 1, :] = occupancy
        f["frame_status"][first : last + 1] = status
        if self.live:
            self._write_live(block, first, last)
        f.flush()
        self.frames_written += len(block)

    def _write_live(self, block: FrameBlock, first: int, last: int) -> None:
        """Camera counters and stage times of a block's frames."""
        counters = np.full(last - first + 1, -1, np.int64)
        times = np.zeros((last - first + 1, len(LIVE_STAGES)), np.int64)
        for frame_idx, info in zip(block.frame_idx, block.live or ()):
            if info is not None:
                counters[frame_idx - first] = info.counter
                times[frame_idx - first] = info.times()
        self._file["camera_counter"][first : last + 1] = counters
        self._file["frame_times"][first : last + 1] = times

    def _grow(self, n_tracks: int, n_frames: int) -> None:
        """Resize every array to at least ``n_tracks`` tracks and ``n_frames`` frames."""
        f = self._file
        old_tracks = f["track_names"].shape[0]
        if n_tracks > old_tracks:
            f["track_names"].resize((n_tracks,))
            f["track_names"][old_tracks:] = _encode(self.slots.names[old_tracks:n_tracks])
        for name, dims in DIMS.items():
            ds = f[name]
            shape = list(ds.shape)
            shape[dims.index("track")] = max(shape[dims.index("track")], n_tracks)
            shape[dims.index("frame")] = max(shape[dims.index("frame")], n_frames)
            if tuple(shape) != ds.shape:
                ds.resize(tuple(shape))
        if n_frames > f["frame_status"].shape[0]:
            f["frame_status"].resize((n_frames,))
            if self.live:
                f["camera_counter"].resize((n_frames,))
                f["frame_times"].resize((n_frames, len(LIVE_STAGES)))

    def close(self) -> None:
        """Write what is queued and close the file (idempotent). After a failed write nothing more is
        written: the file keeps the frames flushed before."""
        if not self._file.id.valid:
            return
        try:
            self.flush()
        finally:
            try:
                self._file.close()
            except (OSError, RuntimeError):
                if not self._failed:
                    raise  # after a failed write, HDF5 may not close cleanly; the first error is the one to report
            release(self.path)

    def __enter__(self) -> AnalysisH5Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
        self._dims = {name: _stored_dims(f[name], name) for name in DIMS}
        nodes = _decode(f["node_names"][:])
        edges = f["edge_inds"][:].reshape(-1, 2).tolist() if "edge_inds" in f else []
        symmetries = json.loads(_attr_str(f.attrs.get("skeleton_symmetries", "[]")))
        self.skeleton = Skeleton.from_names(
            nodes, [(nodes[a], nodes[b]) for a, b in edges], [tuple(s) for s in symmetries],
            name=_attr_str(f.attrs.get("skeleton_name", "")) or "skeleton",
        )  # fmt: skip
        tracks = f["tracks"]
        self.n_frames = tracks.shape[self._dims["tracks"].index("frame")]
        self.n_tracks = tracks.shape[self._dims["tracks"].index("track")]
        self.track_names = _decode(f["track_names"][:]) if "track_names" in f else []
        self.tracked = bool(f.attrs.get("tracked", True)) and bool(self.track_names)  # slots are identities
        self.video_path = _scalar_str(f, "video_path")
        self.labels_path = _scalar_str(f, "labels_path")
        self.provenance = json.loads(_scalar_str(f, "provenance") or "{}")

    def __len__(self) -> int:
        """Frames ``iter_frames()`` yields: those processed (every frame of a file posestream did not write)."""
        if "frame_status" not in self._file:
            return self.n_frames
        return int(np.count_nonzero(self._file["frame_status"][:] != FRAME_NOT_PROCESSED))

    def frame_status(self) -> np.ndarray:
        """(n_frames,) uint8: each frame's status (FRAME_DONE for every frame of a file posestream did not write)."""
        f = self._file
        return f["frame_status"][:] if "frame_status" in f else np.full(self.n_frames, FRAME_DONE, np.uint8)

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Frames [start, stop) of every array, frame axis first, with ``frame_status``."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        f = self._file
        arrays = {name: _frame_first(f[name], name, self._dims[name], start, stop) for name in DIMS}
        arrays["frame_status"] = (
            f["frame_status"][start:stop] if "frame_status" in f else np.full(stop - start, FRAME_DONE, np.uint8)
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


def _frame_at(arrays: dict[str, np.ndarray], row: int, frame_idx: int, slot_ids: np.ndarray) -> FramePredictions:
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
            **reader.read(), track_names=reader.track_names, skeleton=reader.skeleton,
            video_path=reader.video_path, labels_path=reader.labels_path, provenance=reader.provenance,
            tracked=reader.tracked,
        )  # fmt: skip


def _stored_dims(ds: h5py.Dataset, name: str) -> tuple[str, ...]:
    return tuple(json.loads(_attr_str(ds.attrs["dims"]))) if "dims" in ds.attrs else DIMS[name]


def _frame_first(ds: h5py.Dataset, name: str, stored: tuple[str, ...], start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) of a dataset, transposed from its stored axes to frame-first."""
    index = tuple(slice(start, stop) if axis == "frame" else slice(None) for axis in stored)
    data = ds[index].transpose([stored.index(axis) for axis in FRAME_FIRST[name]])
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
