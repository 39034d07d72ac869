"""Neurodata Without Borders (``.nwb``) with the ndx-pose extension: the archive format of neuroscience labs
(``pip install 'posestream[nwb]'``: pynwb and ndx-pose).

In the file's ``behavior`` processing module:

    Skeletons                 the skeleton: node names, edges
    PoseEstimation <slot>     one per track slot (an identity of a tracked run; in untracked output the
                              k-th instance of each frame), named as the analysis HDF5 names its slots
                              (sinks/slots.py), each holding
        PoseEstimationSeries <node>   (n_frames, 2) float32 x, y in pixels, NaN where absent; confidence:
                                      the point scores; timestamps: the video's own, in seconds

Frame i of the series is frame i of the video, up to the last frame processed (frames not processed and
frames that failed to decode are NaN, as in the analysis HDF5). The file's ``notes`` hold posestream's
provenance (models, settings) as JSON, and each PoseEstimation names posestream as its source software.
The session start is the video file's modification time (NWB needs one; the video does not say when it
was recorded).

pynwb writes a file in one go, so this sink keeps every frame's arrays until ``close`` (as the .slp sink
does), checks the room it needs, and saves under a partial name (``OUT.partial.nwb``) that replaces
``OUT.nwb`` only once complete.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, OutputFileError
from posestream.engine.extras import package_version, require
from posestream.engine.sinks.slots import TrackSlots
from posestream.engine.sinks.space import check_room, save_complete
from posestream.engine.types import FrameBlock, FramePredictions, Skeleton

REFERENCE_FRAME = (
    "(x, y) in pixels from the top-left of the frame; the centre of the top-left pixel is (0, 0)"
)
MIN_BYTES = 1 << 20  # the file's own structure, with room to spare
DEFAULT_FPS = 30.0  # frame times when none are given


class NwbWriter:
    """Collect FramePredictions and save them as ndx-pose PoseEstimation, one per track slot.

    timestamps: (n_frames,) seconds of each frame of the video (its own timestamps); provenance: what
    posestream records about the run. ``tracked`` and ``track_names``: the slot layout (sinks/slots.py).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        skeleton: Skeleton,
        video_path: str,
        timestamps: np.ndarray,
        provenance: dict | None = None,
        tracked: bool = False,
        track_names: Sequence[str] = (),
    ):
        require("pynwb", extra="nwb", feature="writing NWB files")
        require("ndx_pose", extra="nwb", feature="writing NWB files")
        self.path, self.skeleton, self.video_path = os.fspath(path), skeleton, video_path
        self.timestamps = np.asarray(timestamps, np.float64)
        self.provenance = provenance or {}
        self.slots = TrackSlots(tracked, track_names)
        self._blocks: list[tuple[FrameBlock, np.ndarray]] = []  # each block with its instances' slots
        slashed = [name for name in (*skeleton.nodes, *track_names) if "/" in name]
        if slashed:
            raise ConfigError(
                f"{self.path}: NWB names cannot hold '/', and these node or identity names do: "
                f"{slashed}; write the analysis HDF5 or .slp instead"
            )
        check_room(self.path, MIN_BYTES, "the NWB file", "nothing was run; make room or write elsewhere")

    def write(self, frame: FramePredictions) -> None:
        self.write_block(FrameBlock.from_frames([frame], self.skeleton.n_nodes))

    def write_block(self, block: FrameBlock) -> None:
        if len(block):
            self._blocks.append((block, self.slots.assign(block)))

    def close(self) -> None:
        """Build the file from every frame written, then save it (under the partial name first)."""
        points, scores = self._arrays()
        outcome = "the poses were not saved; make room (or write elsewhere) and run again"
        check_room(self.path, MIN_BYTES + points.nbytes + scores.nbytes, f"{points.shape[1]} frames", outcome)
        try:
            nwbfile = self._nwbfile(points, scores)
        except ValueError as exc:  # hdmf refuses a name or a shape
            raise OutputFileError(f"{self.path}: cannot build the NWB file ({exc}); {outcome}") from exc
        self._save(nwbfile, outcome)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every slot's points and point scores over the frames.  # (S, F, N, 2), (S, F, N)"""
        n_frames = max((int(b.frame_idx[-1]) + 1 for b, _ in self._blocks), default=0)
        shape = (len(self.slots.names), n_frames, self.skeleton.n_nodes)
        points, scores = np.full((*shape, 2), np.nan, np.float32), np.full(shape, np.nan, np.float32)
        for block, slot in self._blocks:
            frame = np.repeat(block.frame_idx, block.counts)  # (M,) each instance's frame
            points[slot, frame], scores[slot, frame] = block.points, block.point_scores
        return points, scores

    def _nwbfile(self, points: np.ndarray, scores: np.ndarray):
        from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeletons
        from pynwb import NWBFile

        nwbfile = NWBFile(
            session_description=f"poses of {Path(self.video_path).name} by posestream",
            identifier=str(uuid.uuid4()),
            session_start_time=self._session_start(),
            notes=json.dumps(self.provenance),
        )
        behavior = nwbfile.create_processing_module(
            name="behavior", description="poses estimated by posestream"
        )
        skeleton = self._nwb_skeleton()
        behavior.add(Skeletons(skeletons=[skeleton]))
        timestamps = self._frame_times(points.shape[1])
        for s, name in enumerate(self.slots.names):
            series = [
                PoseEstimationSeries(
                    name=node,
                    description=f"{node} of {name}",
                    data=points[s, :, n],
                    unit="pixels",
                    reference_frame=REFERENCE_FRAME,
                    timestamps=timestamps,
                    confidence=scores[s, :, n],
                    confidence_definition="the model's point score",
                )
                for n, node in enumerate(self.skeleton.nodes)
            ]
            behavior.add(
                PoseEstimation(
                    name=name,
                    pose_estimation_series=series,
                    description=f"track slot {name}",
                    original_videos=[self.video_path],
                    skeleton=skeleton,
                    source_software="posestream",
                    source_software_version=package_version(),
                )
            )
        return nwbfile

    def _nwb_skeleton(self):
        from ndx_pose import Skeleton as NwbSkeleton

        edges = np.array(self.skeleton.edges, np.uint8).reshape(-1, 2)
        return NwbSkeleton(
            name=self.skeleton.name or "skeleton", nodes=list(self.skeleton.nodes), edges=edges
        )

    def _frame_times(self, n_frames: int) -> np.ndarray:
        """The first ``n_frames`` timestamps (s); past those given, continued at their last interval (or at
        DEFAULT_FPS).  # (n_frames,)"""
        times = self.timestamps[:n_frames]
        if len(times) < n_frames:
            step = float(np.diff(self.timestamps[-2:])[0]) if len(self.timestamps) > 1 else 1.0 / DEFAULT_FPS
            start = times[-1] + step if len(times) else 0.0
            times = np.concatenate([times, start + step * np.arange(n_frames - len(times))])
        return times

    def _session_start(self) -> datetime.datetime:
        try:
            seconds = os.stat(self.video_path).st_mtime
        except OSError:
            seconds = 0.0
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC)

    def _save(self, nwbfile, outcome: str) -> None:
        from pynwb import NWBHDF5IO

        def save(partial: str) -> None:
            with NWBHDF5IO(partial, "w") as io:
                io.write(nwbfile)

        save_complete(self.path, save, "the NWB file", outcome)

    def __enter__(self) -> NwbWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
