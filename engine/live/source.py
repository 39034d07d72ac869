"""The engine's camera input: frames from ZeroMQ cameras as a live ``FrameSource`` for the pipeline.

A receiver thread takes every message off the sockets as it arrives, checks it (``protocol.parse_frame``)
and puts the frame in the waiting queue, so ZeroMQ's own queues never fill and the cameras never wait.

- Sockets: one SUB per camera address, connected (the camera binds), subscribed to ``frame.``; receive
  high-water mark ``hwm`` messages; messages larger than one frame are refused by ZeroMQ (max message size).
- Waiting queue: bounded, drop-oldest (``queue_frames``): when the model is behind, the newest frames win,
  and the dropped ones are counted per camera (``evicted``).
- Malformed messages are counted by reason (``malformed``) and logged (the first of each reason in full);
  the receiver carries on.
- A camera with no frame for ``silent_after`` seconds is logged as silent, and again when it is back.
- Timeouts: the receiver polls every ``poll_seconds``; ``iter_frames`` yields ``IDLE`` after that long
  without a frame, so the pipeline can check its stop signal.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import zmq

from ..errors import ConfigError
from ..sources.base import IDLE, FrameSource
from ..types import LiveInfo, VideoMetadata
from .protocol import FRAME_PREFIX, FrameHeader, ProtocolError, parse_frame
from .security import Curve, check_address

log = logging.getLogger("posestream.live")


@dataclass(frozen=True)
class CameraInput:
    """Where the cameras are and how frames wait for the model."""

    addresses: tuple[str, ...]
    queue_frames: int = 4  # frames waiting for the model (drop-oldest)
    hwm: int = 4  # ZeroMQ receive high-water mark per address, messages
    silent_after: float = 2.0  # seconds without a frame before a camera is reported silent
    poll_seconds: float = 0.05
    allow_remote: bool = False
    curve: Curve | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(self.addresses))
        if not self.addresses:
            raise ConfigError("no camera: give --camera ADDRESS (e.g. tcp://127.0.0.1:5555)")
        for address in self.addresses:
            check_address(address, self.allow_remote)
        if self.queue_frames < 1 or self.hwm < 1:
            raise ConfigError(f"--queue and the high-water mark must be >= 1, got {self.queue_frames}, {self.hwm}")
        if not self.silent_after > 0:
            raise ConfigError(f"--silent-after must be > 0 seconds, got {self.silent_after}")


class CameraSource(FrameSource):
    """Frames of every camera in arrival order, until ``stop()``; yields ``(seq, image, LiveInfo)``."""

    live = True

    def __init__(self, config: CameraInput, frame_shape: tuple[int, int, int]):
        self.config, self.frame_shape = config, tuple(frame_shape)
        height, width, channels = self.frame_shape
        self.metadata = VideoMetadata("cameras " + ", ".join(config.addresses), width, height, channels, 0.0, 0)
        self.malformed: collections.Counter[str] = collections.Counter()
        self.evicted: collections.Counter[int] = collections.Counter()  # per camera: dropped from the waiting queue
        self.arrived: collections.Counter[int] = collections.Counter()  # per camera: frames taken off the socket
        self.silent: set[int] = set()
        self._last_arrival: dict[int, float] = {}
        self._waiting: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._context = zmq.Context.instance()
        self._sockets = [self._connect(address) for address in config.addresses]
        self._receiver = threading.Thread(target=self._receive, name="camera receiver", daemon=True)
        self._receiver.start()
        self._seq = 0

    def _connect(self, address: str) -> zmq.Socket:
        socket = self._context.socket(zmq.SUB)
        socket.rcvhwm = self.config.hwm
        socket.linger = 0
        socket.setsockopt(zmq.MAXMSGSIZE, max(int(np.prod(self.frame_shape)), FrameHeader.SIZE) + 1024)
        if self.config.curve:
            self.config.curve.client(socket)
        socket.subscribe(FRAME_PREFIX)
        socket.connect(address)
        return socket

    # -- the pipeline's side ---------------------------------------------------

    def __len__(self) -> int:
        return 0  # unknown: frames come until stop()

    def read(self, frame_idx: int) -> np.ndarray:
        raise NotImplementedError("a live camera source cannot seek; iterate it")

    def waiting(self) -> int:
        """Frames waiting now (the pipeline batches these without waiting for more)."""
        return len(self._waiting)

    def iter_frames(self, frames=None, missing="raise") -> Iterator:
        """``(seq, image, LiveInfo)`` per frame in arrival order, ``IDLE`` after ``poll_seconds`` without one;
        ends once ``stop()`` is called and the waiting frames are out."""
        while True:
            with self._cond:
                if not self._waiting:
                    if self._stopping.is_set() and not self._receiver.is_alive():
                        return
                    self._cond.wait(self.config.poll_seconds)
                item = self._waiting.popleft() if self._waiting else None
            if item is None:
                yield IDLE
                continue
            image, info = item
            self._seq += 1
            yield self._seq - 1, image, info

    def stop(self) -> None:
        """Stop taking frames; the pipeline finishes those waiting (safe from any thread or a signal handler)."""
        self._stopping.set()

    def close(self) -> None:
        self.stop()
        self._receiver.join(5.0)
        for socket in self._sockets:
            socket.close(linger=0)

    # -- the receiver thread -----------------------------------------------------

    def _receive(self) -> None:
        poller = zmq.Poller()
        for socket in self._sockets:
            poller.register(socket, zmq.POLLIN)
        poll_ms = int(self.config.poll_seconds * 1000)
        while not self._stopping.is_set():
            for socket, _ in poller.poll(poll_ms):
                while socket.poll(0):
                    self._take(socket.recv_multipart(copy=False), time.monotonic_ns())
            self._check_silence()
        with self._cond:
            self._cond.notify_all()

    def _take(self, parts: list, receive_ns: int) -> None:
        try:
            header, image = parse_frame(parts, self.frame_shape)
        except ProtocolError as exc:
            self.malformed[exc.reason] += 1
            if self.malformed[exc.reason] == 1 or self.malformed[exc.reason] % 1000 == 0:
                log.warning("malformed message #%d (%s): %s", self.malformed[exc.reason], exc.reason, exc)
            return
        camera = header.camera
        self.arrived[camera] += 1
        if camera in self.silent:
            log.warning("camera %d is back after %.1f s (frame %d)", camera,
                        time.monotonic() - self._last_arrival[camera], header.counter)  # fmt: skip
            self.silent.discard(camera)
        self._last_arrival[camera] = time.monotonic()
        info = LiveInfo(camera, header.counter, header.capture_ns, header.send_ns, receive_ns)
        with self._cond:
            if len(self._waiting) >= self.config.queue_frames:
                _, old = self._waiting.popleft()
                self.evicted[old.camera] += 1
            self._waiting.append((image, info))
            self._cond.notify()

    def _check_silence(self) -> None:
        now = time.monotonic()
        for camera, last in self._last_arrival.items():
            if camera not in self.silent and now - last > self.config.silent_after:
                self.silent.add(camera)
                log.warning("camera %d is silent: no frame for %.1f s", camera, now - last)
