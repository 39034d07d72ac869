"""Live frames of several cameras grouped by capture time, the unit live 3D triangulates (issue 27, bar 4).

Policy (stated, and counted):

- A frame joins the oldest open group that has no frame of its camera yet and whose first capture time
  lies within ``tolerance_ms`` of its own; otherwise it opens a new group.
- A group is ready when every camera has a frame in it. It is also let go, with the cameras it has, once
  ``max_wait_ms`` have passed since its first frame arrived: a late or silent camera delays the 3D poses
  by at most that much. Groups leave in capture order: a ready group waits behind an older open one.
- A frame captured within the tolerance of the last group that left, or before it, belongs to a moment
  already gone: it is counted (``late``) and not grouped.
- A camera that restarts keeps grouping: groups go by capture time (one host's monotonic clock), not by the
  cameras' frame counters.

Pure bookkeeping, no threads: the caller gives each frame with the time it arrived, and calls ``expire``
between frames, so nothing waits longer than stated even when frames stop coming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from posestream.core.errors import ConfigError


@dataclass
class FrameGroup:
    """Frames of several cameras taken at about the same moment."""

    capture_ns: int  # the first frame's capture time
    opened_ns: int  # when its first frame arrived
    frames: dict[str, object] = field(default_factory=dict)  # camera -> its frame (FramePredictions)
    captures: dict[str, int] = field(default_factory=dict)  # camera -> the frame's capture time

    def missing(self, cameras: list[str]) -> list[str]:
        return [c for c in cameras if c not in self.frames]


@dataclass
class GroupCounts:
    complete: int = 0  # groups let go with every camera
    partial: int = 0  # groups let go after max_wait_ms without some camera
    late: int = 0  # frames too late for any group


def check_policy(tolerance_ms: float, max_wait_ms: float) -> None:
    if not (0 < tolerance_ms < math.inf and 0 < max_wait_ms < math.inf):
        raise ConfigError(
            f"--group-tolerance-ms {tolerance_ms} and --group-wait-ms {max_wait_ms} must both be > 0 and "
            "finite"
        )


class FrameGrouper:
    """Groups frames of ``cameras`` by capture time (see the module docstring for the policy)."""

    def __init__(self, cameras: list[str], tolerance_ms: float = 5.0, max_wait_ms: float = 20.0):
        if len(cameras) < 2:
            raise ConfigError(f"grouping needs at least 2 cameras, got {cameras}")
        check_policy(tolerance_ms, max_wait_ms)
        self.cameras = list(cameras)
        self.tolerance_ns, self.max_wait_ns = int(tolerance_ms * 1e6), int(max_wait_ms * 1e6)
        self.open: list[FrameGroup] = []  # in capture order
        self.counts = GroupCounts()
        self._last_left_ns: int | None = None  # capture time of the last group that left

    def add(self, camera: str, capture_ns: int, frame: object, now_ns: int) -> list[FrameGroup]:
        """Place one frame; returns the groups ready to leave (in capture order)."""
        if camera not in self.cameras:
            raise ConfigError(f"camera {camera!r} is not one of the grouped cameras {self.cameras}")
        if self._last_left_ns is not None and capture_ns <= self._last_left_ns + self.tolerance_ns:
            self.counts.late += 1
            return self.expire(now_ns)
        group = next(
            (
                g
                for g in self.open
                if camera not in g.frames and abs(capture_ns - g.capture_ns) <= self.tolerance_ns
            ),
            None,
        )
        if group is None:
            group = FrameGroup(capture_ns, now_ns)
            self.open.append(group)
            self.open.sort(key=lambda g: g.capture_ns)
        group.frames[camera] = frame
        group.captures[camera] = capture_ns
        return self.expire(now_ns)

    def expire(self, now_ns: int) -> list[FrameGroup]:
        """The groups that may leave now: complete ones, and those open longer than max_wait_ms, oldest
        first; a group stays while an older one is still open and waiting."""
        leaving = []
        while self.open:
            oldest = self.open[0]
            complete = not oldest.missing(self.cameras)
            if not complete and now_ns - oldest.opened_ns < self.max_wait_ns:
                break
            self.open.pop(0)
            leaving.append(oldest)
            self._last_left_ns = oldest.capture_ns
            if complete:
                self.counts.complete += 1
            else:
                self.counts.partial += 1
        return leaving

    def flush(self) -> list[FrameGroup]:
        """Every open group, as it is (the session is stopping)."""
        leaving, self.open = self.open, []
        for group in leaving:
            if group.missing(self.cameras):
                self.counts.partial += 1
            else:
                self.counts.complete += 1
        return leaving
