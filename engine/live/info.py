"""Where a live camera frame came from, and when each stage was done with it: the ``live`` of a live
camera's ``FramePredictions`` and ``FrameBlock`` (files have None)."""

from __future__ import annotations

from dataclasses import dataclass

from posestream.live.protocol import LIVE_STAGES


@dataclass
class LiveInfo:
    """Where a live camera frame came from, and when each stage was done with it.

    Times are ``time.monotonic_ns()``; 0 until the stage is done. ``counter`` is the camera's own frame
    count. ``restarted``: the camera's counter went back just before this frame (it restarted).
    """

    camera: int
    counter: int
    capture_ns: int
    send_ns: int
    receive_ns: int
    infer_start_ns: int = 0
    infer_end_ns: int = 0
    postprocess_ns: int = 0
    track_ns: int = 0
    hook_ns: int = 0
    publish_ns: int = 0
    batch: int = 0  # frames in the model batch this frame was part of
    restarted: bool = False
    session: int = -1  # the camera's session (1, 2, ...: a restart starts the next); -1: unknown
    session_start: int = -1  # the first counter received in that session, as this frame arrived
    dropped_before: range = range(0)  # the camera's counters dropped just before this frame (its ledger says)

    def times(self) -> tuple[int, ...]:
        """Each stage's time (ns), in the order of LIVE_STAGES."""
        return tuple(getattr(self, f"{stage}_ns") for stage in LIVE_STAGES)
