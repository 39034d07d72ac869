"""The streaming writer of SLEAP analysis HDF5 files (layout: ``layout.py``), crash-safe: SWMR, flushed per
block, each block's bytes reserved on disk before it is written."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from posestream.core.errors import DiskFullError, OutputFileError
from posestream.engine.sinks.analysis_h5.layout import (
    DIMS,
    FRAME_DONE,
    FRAME_DROPPED,
    FRAME_MISSING,
    FRAME_NOT_PROCESSED,
    LIBVER,
    NAME_DTYPE,
    encode,
)
from posestream.engine.sinks.slots import TrackSlots
from posestream.engine.sinks.space import check_free_space, release, reserve
from posestream.engine.types import FrameBlock, FramePredictions, Skeleton
from posestream.live.protocol import LIVE_STAGES

RESERVE_BYTES = 4 << 20  # free space kept beyond a block's own size: HDF5's chunk rewrites and metadata
NOTHING_MORE = (
    "nothing more was written: the frames flushed before are in the file; make room, then run again "
    "(posestream batch resumes where it stopped)"
)


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
        # = chunk_frames: each chunk is compressed once (17 -> 6 us a frame, measured)
        flush_every: int = 1024,
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
        check_free_space(
            self.path, RESERVE_BYTES, "the new file", "no file was made; free space or write elsewhere"
        )
        try:
            self._file = h5py.File(self.path, "w", libver=LIBVER)
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
                name,
                shape=shape,
                maxshape=tuple(None if d == 0 else d for d in shape),
                dtype=dtype,
                fillvalue=fill,
                chunks=chunks,
                compression="gzip",
                compression_opts=4,
            )
            ds.attrs["dims"] = json.dumps(DIMS[name])
        f.create_dataset("frame_status", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(chunk_frames,))
        if self.live:
            f.create_dataset(
                "camera_counter",
                shape=(0,),
                maxshape=(None,),
                dtype=np.int64,
                fillvalue=-1,
                chunks=(chunk_frames,),
            )
            times = f.create_dataset(
                "frame_times",
                shape=(0, len(LIVE_STAGES)),
                maxshape=(None, len(LIVE_STAGES)),
                dtype=np.int64,
                chunks=(chunk_frames, len(LIVE_STAGES)),
            )
            times.attrs["stages"] = json.dumps(LIVE_STAGES)
        f.create_dataset("track_names", shape=(0,), maxshape=(None,), dtype=NAME_DTYPE, chunks=(256,))
        f.create_dataset("node_names", data=encode(self.skeleton.nodes))
        f.create_dataset("edge_names", data=encode(self.skeleton.edge_names).reshape(-1, 2))
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
            raise ValueError(
                f"{self.path}: frames must arrive in increasing order; got frame {first} after "
                f"{self._last_frame}"
            )
        if n_nodes != self.skeleton.n_nodes:
            raise ValueError(
                f"{self.path}: frame {first} has {n_nodes} nodes per instance, the skeleton has "
                f"{self.skeleton.n_nodes}"
            )
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
                raise error(
                    f"{self.path}: writing {frames} failed ({exc}); the frames before them are in the file"
                ) from exc
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
        dropped = (
            np.array([info is not None for info in block.live], bool) if block.live is not None else False
        )
        status[block.frame_idx - first] = np.where(
            ~block.missing, FRAME_DONE, np.where(dropped, FRAME_DROPPED, FRAME_MISSING)
        )
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
            f["track_names"][old_tracks:] = encode(self.slots.names[old_tracks:n_tracks])
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
                    # after a failed write, HDF5 may not close cleanly; the first error is the one to report
                    raise
            release(self.path)

    def __enter__(self) -> AnalysisH5Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
