"""``posestream listen``: print or record an engine's live poses (the consumer for tests, demos, other hosts).

Recording (``-o OUT.h5``) writes one analysis HDF5 per camera (``OUT.cam<id>.h5``), as the engine's own
recording does; the skeleton comes from the engine's statistics messages (sent when a camera first
appears and once a second), so poses that arrive before it wait, at most ``WAIT_FRAMES`` of them. An engine
with a calibration also publishes 3D poses: printed, and given to ``three_d`` (the CLI's: a recording to
OUT.3d.h5, multiview/live_recording.py).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from posestream.engine.live.info import LiveInfo
from posestream.engine.live.recorder import LiveRecorder, check_recording_path
from posestream.engine.live.stats import restarted
from posestream.engine.types import FramePredictions, Skeleton
from posestream.live.pose3d import Pose3DMessage
from posestream.live.protocol import STAGES, PoseMessage
from posestream.live.subscriber import PoseSubscriber

WAIT_FRAMES = 10_000


@dataclass
class ListenSummary:
    frames: int = 0
    cameras: dict[int, int] = field(default_factory=dict)  # frames per camera
    groups: int = 0  # 3D pose messages (an engine with a calibration)
    seconds: float = 0.0
    recordings: list[Path] = field(default_factory=list)
    stats: dict[int, dict] = field(default_factory=dict)  # the last statistics of each camera


def listen(
    address: str,
    out: str | None = None,
    *,
    frames: int | None = None,
    duration: float | None = None,
    idle_timeout: float | None = None,
    quiet: bool = False,
    stop: threading.Event | None = None,
    three_d=None,
    **subscriber_options,
) -> ListenSummary:
    """Receive poses until ``frames`` came, ``duration`` passed, none came for ``idle_timeout`` s, or
    ``stop``. ``three_d``: takes each 3D message (``add(message, stats3d)``) and is closed at the end
    (``close()``: the paths it wrote)."""
    stop = stop or threading.Event()
    summary = ListenSummary()
    recording = _Recording(out) if out is not None else None
    started = last = time.monotonic()
    with PoseSubscriber(address, **subscriber_options) as subscriber:
        try:
            while not stop.is_set() and (frames is None or summary.frames < frames):
                if duration is not None and time.monotonic() - started >= duration:
                    break
                message = subscriber.recv(timeout=0.2)
                if message is None:
                    if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                        break
                    continue
                last = time.monotonic()
                if isinstance(message, Pose3DMessage):
                    summary.groups += 1
                    if not quiet:
                        print(format_3d(message), flush=True)
                    if three_d is not None:
                        three_d.add(message, subscriber.stats3d)
                    continue
                summary.frames += 1
                summary.cameras[message.camera] = summary.cameras.get(message.camera, 0) + 1
                if not quiet:
                    print(format_message(message), flush=True)
                if recording is not None:
                    recording.add(message, subscriber.stats)
        finally:
            summary.stats = dict(subscriber.stats)
            try:
                if recording is not None:
                    summary.recordings = recording.close()
            finally:
                if three_d is not None:
                    summary.recordings += three_d.close()
    summary.seconds = time.monotonic() - started
    return summary


class _Recording:
    """Pose messages into per-camera files, once a statistics message has named the skeleton (until then
    they wait, at most WAIT_FRAMES); a gap in a camera's counter is recorded as dropped frames."""

    def __init__(self, out: str):
        check_recording_path(out)
        self.out = out
        self.recorder: LiveRecorder | None = None
        self.waiting: collections.deque = collections.deque(maxlen=WAIT_FRAMES)
        self.last: dict[int, int] = {}  # camera -> last counter recorded

    def add(self, message: PoseMessage, stats: dict[int, dict]) -> None:
        self.waiting.append(message)
        self.recorder = self.recorder or self._open(stats)
        while self.recorder is not None and self.waiting:
            message = self.waiting.popleft()
            last = self.last.get(message.camera, -1)
            gap = last >= 0 and not restarted(last, message.counter)  # a restart is no gap
            dropped = range(last + 1, message.counter) if gap else range(0)
            self.last[message.camera] = message.counter
            self.recorder.write(as_frame(message), dropped)

    def _open(self, stats: dict[int, dict]) -> LiveRecorder | None:
        for figures in stats.values():
            if "skeleton" in figures:
                skeleton = Skeleton.from_dict(figures["skeleton"])
                return LiveRecorder(self.out, skeleton, figures.get("tracked", True), {"listened": True})
        return None

    def close(self) -> list[Path]:
        if self.recorder is None:
            if self.waiting:
                print(
                    f"listen: no statistics message named the skeleton; {len(self.waiting)} frames not "
                    "recorded",
                    file=sys.stderr,
                )
            return []
        self.recorder.close()
        return self.recorder.paths


def as_frame(message: PoseMessage) -> FramePredictions:
    """A pose message as FramePredictions, with its camera and stage times."""
    header = message.header
    times = {f"{stage}_ns": t for stage, t in zip(STAGES, header.times)}
    info = LiveInfo(
        header.camera,
        header.counter,
        **times,
        batch=header.batch,
        restarted=bool(header.flags & header.RESTARTED),
    )
    return FramePredictions(
        header.counter,
        message.points,
        message.point_scores,
        message.instance_scores,
        message.track_ids,
        live=info,
    )


def format_3d(message: Pose3DMessage) -> str:
    cameras = ",".join(f"{c}:{n}" for c, n in zip(message.cameras.tolist(), message.counters.tolist()))
    solved = int((message.cameras_used > 0).sum())
    return (
        f"3d group {message.group}: cameras [{cameras}]{' (partial)' if message.partial else ''} "
        f"{message.header.n_tracks} animals, {solved} points solved, latency {message.latency_ms:.2f} ms"
    )


def format_message(message: PoseMessage) -> str:
    ids = ",".join(map(str, message.track_ids.tolist()))
    return (
        f"cam {message.camera} frame {message.counter}: {message.header.n_instances} instances"
        f" tracks [{ids}] latency {message.latency_ms:.2f} ms"
    )
