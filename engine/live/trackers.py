"""One tracker per camera, so each camera has its own identities; time is the camera's capture time."""

from __future__ import annotations

from posestream.engine.tracking import Tracker, TrackerConfig
from posestream.engine.types import FrameBlock, FramePredictions

SMOOTHING = 0.05  # weight of each new frame interval in a camera's frame-rate estimate


class CameraTrackers:
    """``update(frame)`` as one Tracker does, routed by ``frame.live.camera`` (the pipeline's tracker
    stage)."""

    def __init__(self, config: TrackerConfig):
        self.config = config
        self.trackers: dict[int, Tracker] = {}
        self._start: dict[int, int] = {}  # camera -> capture ns of its first frame
        self._last: dict[int, tuple[int, int]] = {}  # camera -> (counter, capture ns) of its last frame
        self._rated: set[int] = set()  # cameras with a frame-rate estimate

    def update_block(self, block: FrameBlock) -> FrameBlock:
        """Identities for a block of live frames (in place), each by its camera's tracker."""
        for f in range(len(block)):
            frame = self.update(block.frame(f))
            rows = block.rows(f)
            block.track_ids[rows], block.tracking_scores[rows] = frame.track_ids, frame.tracking_scores
        return block

    def update(self, frame: FramePredictions) -> FramePredictions:
        """Identities for one live frame, at its capture time (seconds since the camera's first frame)."""
        info = frame.live
        camera = info.camera
        if camera not in self.trackers:
            self.trackers[camera] = Tracker(self.config, fps=30.0)
            self._start[camera] = info.capture_ns
        tracker = self.trackers[camera]
        self._estimate_fps(tracker, camera, info.counter, info.capture_ns)
        seconds = max((info.capture_ns - self._start[camera]) / 1e9, tracker.now)  # never back in time
        return tracker.update(frame, time=seconds)

    def _estimate_fps(self, tracker: Tracker, camera: int, counter: int, capture_ns: int) -> None:
        """The camera's frame rate from its counters and capture times (the tracker's 'lost' is 1.5
        frames)."""
        last = self._last.get(camera)
        self._last[camera] = (counter, capture_ns)
        if last is None or counter <= last[0] or capture_ns <= last[1]:
            return
        interval = (capture_ns - last[1]) / 1e9 / (counter - last[0])
        weight = SMOOTHING if camera in self._rated else 1.0
        self._rated.add(camera)
        tracker.fps = 1.0 / ((1 - weight) / tracker.fps + weight * interval)

    @property
    def identities(self) -> int:
        return sum(t.identities for t in self.trackers.values())
