"""``posestream camera-sim``: a video replayed as K live cameras, on an absolute, open-loop schedule.

Frame k of every camera is due at ``start + k / rate``, its capture time. A frame sent late does not
push the next ones back, so a slow engine shows as latency and drops, never as a slower camera. Frames
are decoded ahead into a bounded queue by their own thread (block: decoding is far faster than any rate
a pose model keeps up with), and sent without blocking (``CameraPublisher``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from ..errors import ConfigError
from ..sources import open_source
from ..sources.base import resolve_frames
from .camera import CameraPublisher
from .security import Curve

PIXEL_FORMATS = {1: "mono8", 3: "rgb8"}
DECODE_AHEAD = 64  # frames decoded ahead of the schedule


@dataclass(frozen=True)
class SimOptions:
    address: str
    rate: float = 30.0
    cameras: int = 1
    loop: bool = False
    frames: str | None = None
    duration: float | None = None  # seconds; None: the frames once (or forever with loop)
    wait: float = 10.0  # seconds to wait for the engine to subscribe before sending
    allow_remote: bool = False
    curve: str | None = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"--rate must be > 0 Hz, got {self.rate}")
        if self.cameras < 1:
            raise ConfigError(f"--cameras must be >= 1, got {self.cameras}")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration must be > 0 seconds, got {self.duration}")


@dataclass
class SimSummary:
    frames: int  # frames sent per camera
    cameras: int
    seconds: float
    late: int  # frames sent more than a millisecond after their capture time
    subscribed: bool

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def camera_sim(video: str, options: SimOptions, stop: threading.Event | None = None) -> SimSummary:
    """Replay ``video`` until its frames (or ``duration``) are done, or ``stop`` is set."""
    stop = stop or threading.Event()
    with open_source(video) as source:
        fmt = PIXEL_FORMATS[source.metadata.channels]
        selection = resolve_frames(options.frames, source.metadata.n_frames, source.metadata.path)
        frames: queue.Queue = queue.Queue(DECODE_AHEAD)  # block: the decoder waits for the sender
        decoder = threading.Thread(target=_decode, args=(source, selection, options.loop, frames, stop), daemon=True)
        curve = Curve(options.curve) if options.curve else None
        with CameraPublisher(options.address, allow_remote=options.allow_remote, curve=curve) as publisher:
            subscribed = publisher.wait_for_subscriber(options.wait)
            decoder.start()
            try:
                return _send(publisher, frames, fmt, options, stop, subscribed)
            finally:
                stop.set()
                decoder.join(5.0)


def _decode(source, selection, loop: bool, frames: queue.Queue, stop: threading.Event) -> None:
    """Frames in order into ``frames`` (again and again with ``loop``), then None."""
    try:
        while not stop.is_set():
            for _, image in source.iter_frames(selection):
                while not stop.is_set():
                    try:
                        frames.put(image, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            if not loop:
                break
    finally:
        _put_end(frames, stop)


def _put_end(frames: queue.Queue, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            frames.put(None, timeout=0.1)
            return
        except queue.Full:
            continue


def _send(publisher: CameraPublisher, frames: queue.Queue, fmt: str, options: SimOptions,
          stop: threading.Event, subscribed: bool) -> SimSummary:  # fmt: skip
    period_ns = int(1e9 / options.rate)
    start = time.monotonic_ns() + 50_000_000  # 50 ms to decode the first frames
    end = start + int(options.duration * 1e9) if options.duration else None
    sent = late = 0
    while not stop.is_set():
        due = start + sent * period_ns
        if end is not None and due >= end:
            break
        image = frames.get(timeout=10.0)
        if image is None:
            break
        _sleep_until(due, stop)
        if time.monotonic_ns() - due > 1_000_000:
            late += 1
        for camera in range(options.cameras):
            publisher.send(image, fmt, capture_ns=due, camera=camera)
        sent += 1
    seconds = (time.monotonic_ns() - start) / 1e9
    return SimSummary(sent, options.cameras, seconds, late, subscribed)


def _sleep_until(due_ns: int, stop: threading.Event) -> None:
    """Sleep until ``due_ns`` (monotonic); the last half millisecond spins, for a punctual schedule."""
    while (left := due_ns - time.monotonic_ns()) > 500_000:
        if stop.wait(min(left - 500_000, 100_000_000) / 1e9):
            return
    while time.monotonic_ns() < due_ns:
        pass
