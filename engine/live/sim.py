"""``posestream camera-sim``: a video replayed as K live cameras (or several videos, each its own camera: a
rig's views, as ``synth --cameras`` writes them), on an absolute, open-loop schedule.

Frame k of every camera is due at ``start + k / rate``, its capture time. A frame sent late does not
push the next ones back, so a slow engine shows as latency and drops, never as a slower camera. The
frames are decoded before sending starts when they fit in ``PRELOAD_BYTES`` (so no decoding competes
with the engine for the CPU, as with a real camera); longer selections are decoded ahead into a bounded
queue by their own thread (block: decoding is far faster than a pose model). Frames are sent without
blocking (``CameraPublisher``), or, with ``lossless``, waiting for the engine to take each one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from posestream.core.errors import ConfigError
from posestream.engine.sources import open_source
from posestream.engine.sources.base import resolve_frames
from posestream.live.camera import CameraPublisher
from posestream.live.security import Curve

PIXEL_FORMATS = {1: "mono8", 3: "rgb8"}
DECODE_AHEAD = 64  # frames decoded ahead of the schedule (streaming)
PRELOAD_BYTES = 1 << 30  # selections up to this size are decoded before sending


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
    lossless: bool = False  # wait for the engine to take every frame (live --lossless) instead of dropping

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


def camera_sim(
    video: str | os.PathLike | Sequence[str | os.PathLike],
    options: SimOptions,
    stop: threading.Event | None = None,
) -> SimSummary:
    """Replay ``video`` (one, as ``options.cameras`` cameras; or several, camera k the k-th) until its frames
    (the shortest video's, with several) or ``duration`` are done, or ``stop`` is set."""
    stop = stop or threading.Event()
    videos = [video] if isinstance(video, (str, os.PathLike)) else list(video)
    cameras = len(videos) if len(videos) > 1 else options.cameras
    if len(videos) > 1 and options.cameras not in (1, len(videos)):
        raise ConfigError(
            f"{len(videos)} videos are {len(videos)} cameras, one each; --cameras {options.cameras} does not "
            "match: leave it out"
        )
    with contextlib.ExitStack() as opened:
        sources = [opened.enter_context(open_source(v)) for v in videos]
        formats = [PIXEL_FORMATS[s.metadata.channels] for s in sources]
        shortest = min(sources, key=lambda s: s.metadata.n_frames)
        selection = resolve_frames(options.frames, shortest.metadata.n_frames, shortest.metadata.path)
        size = sum(s.metadata.width * s.metadata.height * s.metadata.channels for s in sources)
        preload = len(selection) * size <= PRELOAD_BYTES
        curve = Curve(options.curve) if options.curve else None
        with CameraPublisher(
            options.address, allow_remote=options.allow_remote, curve=curve, lossless=options.lossless
        ) as publisher:
            subscribed = publisher.wait_for_subscriber(options.wait)
            try:
                if preload:
                    frames = zip(*(_preloaded(s, selection, options.loop) for s in sources))
                else:
                    frames = zip(*(_streamed(s, selection, options.loop, stop) for s in sources))
                return _send(publisher, frames, formats, cameras, options, stop, subscribed)
            finally:
                stop.set()


def _preloaded(source, selection, loop: bool) -> Iterator:
    """The selected frames, decoded now (again and again with ``loop``)."""
    frames = [image for _, image in source.iter_frames(selection)]
    return itertools.cycle(frames) if loop else iter(frames)


def _streamed(source, selection, loop: bool, stop: threading.Event) -> Iterator:
    """The selected frames, decoded ahead by a thread into a bounded queue."""
    ahead: queue.Queue = queue.Queue(DECODE_AHEAD)  # block: the decoder waits for the sender
    decoder = threading.Thread(target=_decode, args=(source, selection, loop, ahead, stop), daemon=True)
    decoder.start()
    try:
        while (image := ahead.get(timeout=10.0)) is not None:
            yield image
    finally:
        stop.set()
        decoder.join(5.0)


def _decode(source, selection, loop: bool, frames: queue.Queue, stop: threading.Event) -> None:
    """Frames in order into ``frames`` (again and again with ``loop``), then None."""
    try:
        while not stop.is_set():
            for _, image in source.iter_frames(selection):
                if not _put(frames, image, stop):
                    return
            if not loop:
                break
    finally:
        _put(frames, None, stop)


def _put(frames: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item``, waiting for room; False if ``stop`` is set first."""
    while not stop.is_set():
        try:
            frames.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _send(
    publisher: CameraPublisher,
    frames: Iterator[tuple],
    formats: list[str],
    cameras: int,
    options: SimOptions,
    stop: threading.Event,
    subscribed: bool,
) -> SimSummary:
    """Each moment's images (one per video) as every camera's frame, on the schedule."""
    period_ns = int(1e9 / options.rate)
    start = time.monotonic_ns() + 50_000_000  # 50 ms to decode the first frames
    end = start + int(options.duration * 1e9) if options.duration else None
    sent = late = 0
    try:
        while not stop.is_set():
            due = start + sent * period_ns
            if end is not None and due >= end:
                break
            images = next(frames, None)
            if images is None:
                break
            _sleep_until(due, stop)
            if time.monotonic_ns() - due > 1_000_000:
                late += 1
            for camera in range(cameras):
                source = camera % len(images)  # one video: every camera sends it
                publisher.send(images[source], formats[source], capture_ns=due, camera=camera)
            sent += 1
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop sending, report what was sent
        pass
    seconds = (time.monotonic_ns() - start) / 1e9
    return SimSummary(sent, cameras, seconds, late, subscribed)


def _sleep_until(due_ns: int, stop: threading.Event) -> None:
    """Sleep until ``due_ns`` (monotonic; the OS wakes us some tens of microseconds late, which counts as
    latency since the frame's capture time is ``due_ns``)."""
    while (left := due_ns - time.monotonic_ns()) > 0:
        if left > 100_000_000:
            if stop.wait(0.1):
                return
        else:
            time.sleep(left / 1e9)
