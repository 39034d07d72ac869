"""``posestream retrack``: identities for a predictions file (ours, SLEAP's or sleap-nn's), without models.

The file's poses stream frame by frame through the same ``Tracker`` the pipeline runs, into a new file
(.h5: the tracked analysis layout; .slp: sleap-io Tracks). The input's own track ids are ignored, so
trying other tracker settings takes seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, PosestreamError
from posestream.engine.progress import progress_bar
from posestream.engine.sinks import open_sinks, prepare_outputs
from posestream.engine.sinks.predictions import H5_SUFFIXES, find_video, open_predictions
from posestream.engine.sinks.slots import UNTRACKED_SLOT_PREFIX
from posestream.engine.sources import open_source
from posestream.engine.tracking.config import TrackerConfig
from posestream.engine.tracking.tracker import Tracker
from posestream.engine.types import UNTRACKED


@dataclass
class RetrackSummary:
    frames: int
    instances: int
    identities: int  # identities the tracker started
    input_tracks: int  # identities the input file named (not its untracked slots)
    fps: float  # frame rate the track ages were measured with
    seconds: float  # the whole run: reading, tracking, writing
    tracking_seconds: float  # Tracker.update alone
    output: Path

    @property
    def tracking_ms_per_frame(self) -> float:
        return 1000 * self.tracking_seconds / max(self.frames, 1)


def retrack(
    predictions: str | os.PathLike,
    out: str | os.PathLike,
    config: TrackerConfig = TrackerConfig(),
    fps: float | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> RetrackSummary:
    """Track the poses of ``predictions`` into ``out`` (.h5 or .slp). ``fps`` None: the video's frame rate.
    ``overwrite``: replace ``out`` also when it does not hold predictions posestream wrote."""
    out = Path(out)
    if out.suffix.lower() not in (*H5_SUFFIXES, ".slp", ".nwb"):
        raise ConfigError(
            f"-o {out}: the output must end in .h5 (analysis HDF5), .slp (SLEAP labels) or .nwb (NWB)"
        )
    if out.exists() and out.resolve() == Path(predictions).resolve():
        raise ConfigError(f"-o {out} is the input file; write the tracked poses to another file")
    started = time.perf_counter()
    with open_predictions(predictions) as reader:
        if fps is None:
            fps = _video_fps(reader.video_path, predictions)
        tracker = Tracker(config, fps)
        fmt = {".slp": "slp", ".nwb": "nwb"}.get(out.suffix.lower(), "analysis-h5")
        prepare_outputs({fmt: out}, overwrite)
        provenance = {
            "retracked_from": str(Path(predictions).resolve()),
            "tracking": asdict(config),
            "fps": fps,
        }
        (sink,) = open_sinks(
            {fmt: out},
            reader.skeleton,
            reader.video_path,
            provenance,
            tracked=True,
            timestamps=lambda: np.arange(len(reader)) / fps,
        )
        frames = instances = 0
        tracking_seconds = 0.0
        try:
            with progress_bar(len(reader), "retrack", enabled=progress) as advance:
                for frame in reader.iter_frames():
                    frame.track_ids[:] = UNTRACKED
                    tick = time.perf_counter()
                    tracker.update(frame)
                    tracking_seconds += time.perf_counter() - tick
                    sink.write(frame)
                    frames, instances = frames + 1, instances + frame.n_instances
                    advance(1)
        finally:
            sink.close()
        if instances == 0:
            out.unlink(missing_ok=True)
            raise ConfigError(
                f"{predictions}: holds no poses ({frames} frames, no instance); nothing to track"
            )
        input_tracks = (
            sum(not n.startswith(UNTRACKED_SLOT_PREFIX) for n in reader.track_names) if reader.tracked else 0
        )
        return RetrackSummary(
            frames,
            instances,
            tracker.identities,
            input_tracks,
            fps,
            time.perf_counter() - started,
            tracking_seconds,
            out,
        )


def _video_fps(video_path: str, predictions: str | os.PathLike) -> float:
    """The frame rate of the video a predictions file names (found where it says, or beside the file)."""
    video = find_video(video_path, predictions)
    hint = "track ages (--track-max-age) are in seconds, so the tracker needs the frame rate: give --fps"
    if video is None:
        raise ConfigError(
            f"{predictions}: its video {video_path!r} is not here (nor beside the file); {hint}"
        )
    try:
        with open_source(video) as source:
            return source.metadata.fps
    except (PosestreamError, OSError) as exc:
        raise ConfigError(
            f"{predictions}: cannot read the frame rate of its video {video} ({exc}); {hint}"
        ) from exc


def format_summary(summary: RetrackSummary) -> str:
    return "\n".join(
        [
            f"{summary.frames} frames, {summary.instances} instances: {summary.identities} identities "
            f"(the input named {summary.input_tracks} identities), at {summary.fps:g} FPS video time",
            f"tracking {summary.tracking_ms_per_frame:.3f} ms per frame; {summary.seconds:.1f} s in all",
            f"output: {summary.output}",
        ]
    )
