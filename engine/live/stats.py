"""Per-camera accounting of a live run: frames sent, processed and dropped, and latency percentiles.

Counting is exact and rests on the camera's own frame counter, read in the order frames leave the pipeline:
- sent: the counters the camera used (last - first + 1, summed over its restarts);
- received: frames that got poses;
- dropped: frames sent that got no poses (gaps in the counter), so received + dropped = sent. The
  engine's waiting queue says how many of them it dropped itself (``dropped_in_queue``); the rest were
  lost before reaching it (``dropped_in_transport``: the camera's or ZeroMQ's queue was full).

A camera whose counter goes back has restarted: its new frames start a new count. So has one whose counter
jumps ahead by more than ``MAX_GAP`` frames: counters come off the wire, and a jump from 2 to 10**12 is a
reset (or garbage), not 10**12 frames to account for one by one.
Memory is fixed: latencies go into a log-spaced histogram (1% wide bins from 1 us to 100 s).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from posestream.engine.live.info import LiveInfo

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
MAX_GAP = 100_000  # frames: a longer gap in a camera's counter is a restart (55 minutes at 30 Hz)


def restarted(last: int, counter: int) -> bool:
    """Whether a frame numbered ``counter`` after ``last`` starts a new count (the counter went back, or
    jumped ahead by more than MAX_GAP frames)."""
    return counter <= last or counter - last - 1 > MAX_GAP


class LatencyHistogram:
    """Latencies in fixed memory; percentiles within 1%, max exact."""

    LOW_US, HIGH_US, GROWTH = 1.0, 1e8, 1.01
    BINS = int(math.log(HIGH_US / LOW_US) / math.log(GROWTH)) + 2

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS, np.int64)
        self.n = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        us = max(ms * 1000.0, self.LOW_US)
        self.counts[min(int(math.log(us / self.LOW_US) / math.log(self.GROWTH)) + 1, self.BINS - 1)] += 1
        self.n += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The q-th percentile in ms (the upper edge of its bin, capped at the max); NaN when empty."""
        if not self.n:
            return math.nan
        rank = int(math.ceil(q / 100.0 * self.n))
        b = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return min(self.LOW_US * self.GROWTH**b / 1000.0, self.max_ms)

    def summary(self) -> dict[str, float]:
        out = {name: round(self.percentile(q), 3) for name, q in PERCENTILES.items()}
        out["max"] = round(self.max_ms, 3)
        return out


@dataclass
class CameraLedger:
    """One camera's counts (see the module docstring)."""

    camera: int
    first: int = -1  # counter of this session's first frame (-1: none yet)
    last: int = -1
    sent_before: int = 0  # frames sent in earlier sessions (before restarts)
    received: int = 0
    dropped: int = 0
    published: int = 0
    restarts: int = 0
    session: int = -1  # the receiver's session number of the last frame counted
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    window: LatencyHistogram = field(default_factory=LatencyHistogram)  # since the last stats message
    window_frames: int = 0

    @property
    def sent(self) -> int:
        return self.sent_before + (self.last - self.first + 1 if self.first >= 0 else 0)

    def arrived(self, info: LiveInfo) -> range:
        """Count a frame that got poses; returns the counters dropped just before it.

        ``info.session`` and ``info.session_start``: the receiver's count of the camera's sessions (it decides
        what a restart is) and the first counter it took in this one, so frames dropped from the queue before
        the first one processed count too (-1: unknown; then a counter that goes back or jumps is a restart).
        """
        session_start = info.session_start
        start = info.counter if session_start < 0 or session_start > info.counter else session_start
        new_session = restarted(self.last, info.counter) if info.session < 0 else info.session != self.session
        self.session = info.session
        if self.first < 0:
            self.first = start
            gap = range(start, info.counter)
        elif new_session:
            self.sent_before, self.first = self.sent, start
            self.restarts += 1
            info.restarted = True
            gap = range(start, info.counter)
        else:
            gap = range(self.last + 1, info.counter)
        self.last = info.counter
        self.received += 1
        self.dropped += len(gap)
        return gap

    def ended(self, last_counter: int) -> range:
        """The camera says its last frame was ``last_counter``: the frames after the last received are dropped
        (none if that would be a gap of more than MAX_GAP frames: the source refuses such end messages)."""
        valid = self.first >= 0 and last_counter > self.last and not restarted(self.last, last_counter + 1)
        if not valid:
            return range(0)
        gap = range(self.last + 1, last_counter + 1)
        self.dropped += len(gap)
        self.last = last_counter
        return gap

    def done(self, info: LiveInfo) -> None:
        """Count a frame's latency (capture to publish) once it is out."""
        ms = (info.publish_ns - info.capture_ns) / 1e6
        self.latency.add(ms)
        self.window.add(ms)
        self.window_frames += 1


class StatsBoard:
    """Every camera's ledger, read by the stats thread while the pipeline's thread writes them."""

    def __init__(self) -> None:
        self.cameras: dict[int, CameraLedger] = {}
        self.lock = threading.Lock()
        self._window_start = time.monotonic()

    def ledger(self, camera: int) -> CameraLedger:
        if camera not in self.cameras:
            with self.lock:
                self.cameras[camera] = CameraLedger(camera)
        return self.cameras[camera]

    def snapshot(
        self, evicted: dict[int, int], silent: set[int], extra: dict | None = None
    ) -> dict[int, dict]:
        """Each camera's figures now (the ``stats.<camera>`` message); starts a new rate window."""
        now = time.monotonic()
        seconds, self._window_start = max(now - self._window_start, 1e-9), now
        with self.lock:
            out = {}
            for camera, ledger in self.cameras.items():
                out[camera] = camera_stats(ledger, evicted.get(camera, 0), camera in silent)
                out[camera]["rate_hz"] = round(ledger.window_frames / seconds, 2)
                out[camera]["window_latency_ms"] = ledger.window.summary()
                out[camera].update(extra or {})
                ledger.window, ledger.window_frames = LatencyHistogram(), 0
        return out


def camera_stats(ledger: CameraLedger, evicted: int, silent: bool = False) -> dict:
    """The figures of one camera, under the names of ``--stats-json``."""
    return {
        "camera": ledger.camera,
        "frames_sent": ledger.sent,
        "frames_received": ledger.received,
        "frames_dropped": ledger.dropped,
        "dropped_in_queue": evicted,
        "dropped_in_transport": ledger.dropped - evicted,
        "frames_published": ledger.published,
        "restarts": ledger.restarts,
        "silent": silent,
        "latency_ms": ledger.latency.summary(),
    }
