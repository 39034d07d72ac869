"""Recording a live run: one analysis HDF5 per camera (``OUT.cam<id>.h5``), crash-safe as every one is.

A camera's file numbers its frames from 0 in the order the camera sent them: a frame the engine dropped
keeps its place, marked dropped (frame_status 3) with its camera counter, so the file's frame axis is the
camera's time line. After a camera restarts, its frames continue after the last one. Each frame's camera
counter and stage times are recorded too (see ``sinks/analysis_h5``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posestream.engine.live.info import LiveInfo
from posestream.engine.sinks import make_folder
from posestream.engine.sinks.analysis_h5 import AnalysisH5Writer
from posestream.engine.types import FrameBlock, FramePredictions, Skeleton


def camera_path(out: str | os.PathLike, camera: int) -> Path:
    """OUT.cam<camera>.h5 beside OUT.h5."""
    return beside(out, f"cam{camera}")


def three_d_path(out: str | os.PathLike) -> Path:
    """OUT.3d.h5 beside OUT.h5: a calibrated live run's 3D poses (multiview/live_sink.py)."""
    return beside(out, "3d")


def beside(out: str | os.PathLike, part: str) -> Path:
    """OUT.<part>.h5 for the recording OUT.h5 (or OUT)."""
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix == ".h5" else out.name
    return out.parent / f"{stem}.{part}.h5"


def check_recording_path(out: str | os.PathLike) -> None:
    """Refuse at start (an OutputFileError naming the fix) a recording path whose folder cannot be made."""
    make_folder(Path(out).parent, f"recording {out}")


class LiveRecorder:
    """Writes each camera's frames, and the frames dropped before them, to the camera's file."""

    def __init__(
        self,
        out: str | os.PathLike,
        skeleton: Skeleton,
        tracked: bool,
        provenance: dict,
        track_names: Sequence[str] = (),
    ):
        """``track_names``: an identity model's classes, the names of track ids 0, 1, ..."""
        self.out, self.skeleton, self.tracked, self.provenance = Path(out), skeleton, tracked, provenance
        self.track_names = list(track_names)
        self.writers: dict[int, AnalysisH5Writer] = {}
        self._next: dict[int, int] = {}  # camera -> index of its next frame in its file
        check_recording_path(self.out)

    def write_block(self, block: FrameBlock) -> None:
        """The sink's side (sinks/base.py): each frame, after the frames dropped just before it."""
        for frame in block.frames():
            self.write(frame, frame.live.dropped_before)

    def write(self, frame: FramePredictions, dropped: range) -> None:
        """Record the frames dropped just before ``frame`` (their camera counters), then the frame."""
        camera = frame.live.camera
        self.write_dropped(camera, dropped)
        self._writer(camera).write(
            FramePredictions(
                self._take(camera),
                frame.points,
                frame.point_scores,
                frame.instance_scores,
                frame.track_ids,
                frame.tracking_scores,
                live=frame.live,
            )
        )

    def write_dropped(self, camera: int, counters: range) -> None:
        """Record frames the camera sent that got no poses (by their counters)."""
        if not counters:
            return
        writer = self._writer(camera)
        first = self._next[camera]
        self._next[camera] += len(counters)
        live = [LiveInfo(camera, counter, 0, 0, 0) for counter in counters]
        frames = np.arange(first, first + len(counters))
        writer.write_block(FrameBlock.missing_frames(frames, self.skeleton.n_nodes, live))

    def _writer(self, camera: int) -> AnalysisH5Writer:
        if camera not in self.writers:
            path = camera_path(self.out, camera)
            self.writers[camera] = AnalysisH5Writer(
                path,
                self.skeleton,
                video_path=f"camera {camera}",
                provenance=self.provenance,
                tracked=self.tracked,
                track_names=self.track_names,
                live=True,
            )
            self._next[camera] = 0
        return self.writers[camera]

    def _take(self, camera: int) -> int:
        self._next[camera] += 1
        return self._next[camera] - 1

    @property
    def paths(self) -> list[Path]:
        return [Path(w.path) for w in self.writers.values()]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
