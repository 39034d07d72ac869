"""The engine's camera input: frames from ZeroMQ cameras as a live ``FrameSource`` for the pipeline.

A receiver thread takes every message off the sockets as it arrives, checks it (``protocol.parse_frame``)
and puts the frame in the waiting queue, so ZeroMQ's own queues never fill and the cameras never wait.

- Sockets: one SUB per camera address, connected (the camera binds), subscribed to ``frame.`` and
  ``end.`` (a camera's last counter when it stops); receive high-water mark ``hwm`` messages. A frame
  of another size than the model's is refused here, by reason (``frame_size``); ZeroMQ itself refuses
  only messages over ``max_message_bytes`` and then drops the connection, which the receiver sees (a
  socket monitor) and makes again, so one hostile message never cuts a camera off.
- Waiting queues: one per camera, bounded, drop-oldest (``queue_frames`` frames each): when the model is
  behind, the newest frames win, and the dropped ones are counted per camera (``evicted``). With
  ``lossless`` the queue blocks instead: the receiver waits for room, ZeroMQ's queues fill, and a camera
  that sends losslessly (``CameraPublisher(lossless=True)``, ``camera-sim --lossless``) waits too; a stop
  then serves what the cameras sent up to their end messages (at most ``drain_seconds``). For replaying
  recorded video and for tests: a live rig wants the newest frame, not every frame.
- Batches: when the pipeline is ready for one, the source takes one waiting frame of each camera (in
  arrival order, at most ``max_batch``): its oldest, which absorbs a burst without a drop; but when the
  camera's frames have been waiting more than ``overload_ms`` at every batch for ``overload_window`` seconds
  (a standing queue, as CoDel tells it from a burst: the model cannot keep up), its newest, and the older ones
  are dropped, so latency stays near one model call. With several cameras live, it first waits up to
  ``gather_ms`` for the cameras that have nothing waiting yet, so frames captured together (a triggered rig)
  go through the model together.
- Malformed messages are counted by reason (``malformed``) and logged (the first of each reason in full);
  the receiver carries on.
- A camera with no frame for ``silent_after`` seconds is logged as silent, and again when it is back.
- Timeouts: the receiver polls every ``poll_seconds``; ``iter_frames`` yields ``IDLE`` after that long
  without a frame, so the pipeline can check its stop signal. A camera counts as live for the gathering
  while it has sent a frame within the last second.
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
from zmq.utils.monitor import recv_monitor_message

from posestream.core.errors import ConfigError, PosestreamError
from posestream.engine.live.info import LiveInfo
from posestream.engine.live.stats import MAX_GAP, restarted
from posestream.engine.live.trackers import CameraTrackers
from posestream.engine.sources.base import FLUSH, IDLE, FrameSource
from posestream.engine.tracking import TrackerConfig
from posestream.engine.types import VideoMetadata
from posestream.live.protocol import END_PREFIX, FRAME_PREFIX, ProtocolError, parse_end, parse_frame
from posestream.live.security import Curve, check_address, connected_socket

log = logging.getLogger("posestream.live")
MAX_MESSAGE_BYTES = 1 << 29  # 512 MiB: an 8K RGB frame is 100 MB
MONITORED = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CONNECT_DELAYED
RECONNECT_AFTER = 0.5  # s: a dropped connection ZeroMQ has not started to make again by then is made here


class LiveSourceError(PosestreamError, RuntimeError):
    """The camera receiver thread failed (a ZeroMQ error); the live run stops with it."""


@dataclass(frozen=True)
class CameraInput:
    """Where the cameras are and how frames wait for the model."""

    addresses: tuple[str, ...]
    queue_frames: int = 4  # frames of each camera waiting for the model (drop-oldest)
    max_batch: int = 4  # frames per batch (one per camera)
    gather_ms: float = 1.0  # with several cameras, how long a batch waits for the others' frames
    overload_ms: float = 2.0  # a camera whose frames wait longer than this at every batch ...
    overload_window: float = 0.2  # ... for this many seconds is overloaded: its newest frame goes first
    hwm: int = 4  # ZeroMQ receive high-water mark per address, messages
    silent_after: float = 2.0  # seconds without a frame before a camera is reported silent
    poll_seconds: float = 0.05
    allow_remote: bool = False
    curve: Curve | None = None
    lossless: bool = False  # block instead of dropping (see the module docstring)
    drain_seconds: float = 10.0  # lossless: after a stop, how long to wait for the cameras' end messages
    max_message_bytes: int = MAX_MESSAGE_BYTES  # ZeroMQ drops the connection above this (then reconnected)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(self.addresses))
        if not self.addresses:
            raise ConfigError("no camera: give --camera ADDRESS (e.g. tcp://127.0.0.1:5555)")
        for address in self.addresses:
            check_address(address, self.allow_remote)
        if self.queue_frames < 1 or self.hwm < 1 or self.max_batch < 1:
            raise ConfigError(
                f"--queue, --max-batch and the high-water mark must be >= 1, got {self.queue_frames}, "
                f"{self.max_batch}, {self.hwm}"
            )
        if self.gather_ms < 0:
            raise ConfigError(f"--gather-ms must be >= 0, got {self.gather_ms}")
        if not self.silent_after > 0:
            raise ConfigError(f"--silent-after must be > 0 seconds, got {self.silent_after}")


class CameraSource(FrameSource):
    """Frames of every camera, a batch at a time, until ``stop()``: ``(seq, image, LiveInfo)`` ...
    ``FLUSH``."""

    live = True

    def tracker(self, config: TrackerConfig) -> CameraTrackers:
        """The tracker stage for camera frames: a tracker per camera, each on its camera's clock."""
        return CameraTrackers(config)

    def __init__(self, config: CameraInput, frame_shape: tuple[int, int, int]):
        self.config, self.frame_shape = config, tuple(frame_shape)
        height, width, channels = self.frame_shape
        self.metadata = VideoMetadata(
            "cameras " + ", ".join(config.addresses), width, height, channels, 0.0, 0
        )
        self.malformed: collections.Counter[str] = collections.Counter()
        # per camera: dropped from the waiting queue
        self.evicted: collections.Counter[int] = collections.Counter()
        # per camera: frames taken off the socket
        self.arrived: collections.Counter[int] = collections.Counter()
        self.silent: set[int] = set()
        self.ended: dict[int, int] = {}  # camera -> the last counter it says it sent (its end message)
        self.session_start: dict[int, int] = {}  # camera -> first counter received since it (re)started
        self._last_counter: dict[int, int] = {}
        self._last_arrival: dict[int, float] = {}
        self._waiting: dict[int, collections.deque] = {}  # camera -> (arrival, image, LiveInfo), oldest first
        self._arrivals = 0
        self._overload: dict[int, StandingQueue] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._drain_deadline: float | None = None  # lossless: when a stop's draining ends
        self._failure: Exception | None = None  # what ended the receiver thread, for the pipeline to raise
        self._sessions: collections.Counter[int] = collections.Counter()  # camera -> sessions so far
        self._context = zmq.Context.instance()
        self._sockets = [self._connect(address) for address in config.addresses]
        self._monitors = {
            s.get_monitor_socket(MONITORED): (s, a) for s, a in zip(self._sockets, config.addresses)
        }
        self._dropped: dict[zmq.Socket, float] = {}  # socket -> when ZeroMQ dropped its connection
        self._receiver = threading.Thread(target=self._receive, name="camera receiver", daemon=True)
        self._receiver.start()
        self._seq = 0

    def _connect(self, address: str) -> zmq.Socket:
        """A SUB socket on one camera address."""
        return connected_socket(
            self._context,
            address,
            [FRAME_PREFIX, END_PREFIX],
            hwm=self.config.hwm,
            allow_remote=self.config.allow_remote,
            curve=self.config.curve,
            max_message=self.config.max_message_bytes,
        )

    # -- the pipeline's side ---------------------------------------------------

    def __len__(self) -> int:
        return 0  # unknown: frames come until stop()

    def read(self, frame_idx: int) -> np.ndarray:
        raise NotImplementedError("a live camera source cannot seek; iterate it")

    def iter_frames(self, frames=None, missing="raise") -> Iterator:
        """Each batch's frames as ``(seq, image, LiveInfo)``, then ``FLUSH``; ``IDLE`` after ``poll_seconds``
        without a frame; ends once ``stop()`` is called and the waiting frames are out."""
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                yield IDLE
                continue
            for image, info in batch:
                self._seq += 1
                yield self._seq - 1, image, info
            yield FLUSH

    def _next_batch(self) -> list | None:
        """The oldest waiting frame of each camera (at most max_batch), [] if none came, None once stopped."""
        with self._cond:
            if self._failure is not None:
                raise LiveSourceError(f"the camera receiver failed: {self._failure!r}") from self._failure
            if not any(self._waiting.values()):
                if self._stopping.is_set() and not self._receiver.is_alive():
                    return None
                self._cond.wait(self.config.poll_seconds)
            if not any(self._waiting.values()):
                return []
            self._gather()
            heads = sorted((q[0][0], camera) for camera, q in self._waiting.items() if q)
            batch = [self._take_one(camera) for _, camera in heads[: self.config.max_batch]]
            self._cond.notify_all()  # a lossless receiver waits for room
            return batch

    def _take_one(self, camera: int) -> tuple:
        """The camera's oldest waiting frame, or under overload its newest (the older ones dropped)."""
        waiting = self._waiting[camera]
        now = time.monotonic_ns()
        monitor = self._overload.setdefault(
            camera, StandingQueue(self.config.overload_ms, self.config.overload_window)
        )
        if monitor.overloaded((now - waiting[0][2].receive_ns) / 1e6, now / 1e9) and not self.config.lossless:
            while len(waiting) > 1:
                waiting.popleft()
                self.evicted[camera] += 1
        return waiting.popleft()[1:]

    def _gather(self) -> None:
        """With several cameras live, wait up to gather_ms for those with nothing waiting (under the lock)."""
        deadline = time.monotonic() + self.config.gather_ms / 1000
        live = {c for c, t in self._last_arrival.items() if deadline - t < 1.0}
        while len(live) > 1 and (left := deadline - time.monotonic()) > 0:
            if all(self._waiting.get(c) for c in live):
                return
            self._cond.wait(left)

    def stop(self) -> None:
        """Stop taking frames; the pipeline finishes those waiting (safe from any thread or a signal
        handler)."""
        self._stopping.set()

    def close(self) -> None:
        """Release the sockets; a lossless drain still running (the pipeline stopped on an error) ends now."""
        self._drain_deadline = time.monotonic()
        self.stop()
        self._receiver.join(5.0)
        for monitor, (socket, _) in self._monitors.items():
            socket.disable_monitor()
            monitor.close(linger=0)
        for socket in self._sockets:
            socket.close(linger=0)

    # -- the receiver thread -----------------------------------------------------

    def _receive(self) -> None:
        """The receiver thread: one message of each ready address in turn (a lossless camera that keeps its
        socket full never starves the others), the connection watch and the silence check. An error here
        ends the thread and reaches the pipeline (``_next_batch`` raises it)."""
        poller = zmq.Poller()
        for socket in [*self._sockets, *self._monitors]:
            poller.register(socket, zmq.POLLIN)
        poll_ms = int(self.config.poll_seconds * 1000)
        try:
            while self._receiving():
                for socket, _ in poller.poll(poll_ms):
                    if socket in self._monitors:
                        self._watch(socket)
                    elif self._receiving():
                        self._take(socket.recv_multipart(copy=False), time.monotonic_ns())
                self._check_silence()
                self._reconnect_dropped()
        except Exception as exc:  # noqa: BLE001 - handed to the pipeline's thread, which raises it
            self._failure = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def _receiving(self) -> bool:
        """Until stopped; lossless, until every camera heard from has sent its end message (or
        drain_seconds)."""
        if not self._stopping.is_set():
            return True
        if not self.config.lossless:
            return False
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + self.config.drain_seconds
        return time.monotonic() < self._drain_deadline and any(c not in self.ended for c in self.arrived)

    def _watch(self, monitor: zmq.Socket) -> None:
        """Note a dropped connection, and forget it once ZeroMQ says it is connecting again by itself."""
        while monitor.poll(0):
            event = recv_monitor_message(monitor)["event"]
            socket = self._monitors[monitor][0]
            if event == zmq.EVENT_DISCONNECTED:
                self._dropped[socket] = time.monotonic()
            elif event in (zmq.EVENT_CONNECT_RETRIED, zmq.EVENT_CONNECT_DELAYED):
                self._dropped.pop(socket, None)

    def _reconnect_dropped(self) -> None:
        """Connect again where ZeroMQ gave up (after a message over max_message_bytes, or a peer that does not
        speak ZeroMQ); counted as malformed (``dropped_connection``), once per drop."""
        for monitor in self._monitors:
            self._watch(monitor)  # a retry ZeroMQ queued meanwhile: not ours to make
        now = time.monotonic()
        for socket, address in self._monitors.values():
            if now - self._dropped.get(socket, now) > RECONNECT_AFTER:
                del self._dropped[socket]
                self._count_malformed(
                    ProtocolError(
                        "dropped_connection",
                        f"ZeroMQ dropped the connection to {address} "
                        f"and did not make it again (a message over {self.config.max_message_bytes >> 20} "
                        "MiB, or a peer that does not speak ZeroMQ); connected again",
                    )
                )
                socket.disconnect(address)
                socket.connect(address)

    def _take(self, parts: list, receive_ns: int) -> None:
        try:
            if bytes(parts[0].buffer[: len(END_PREFIX)]) == END_PREFIX:
                self._take_end(*parse_end(parts))
                return
            header, image = parse_frame(parts, self.frame_shape)
        except ProtocolError as exc:
            self._count_malformed(exc)
            return
        camera = header.camera
        self.arrived[camera] += 1
        if camera not in self.session_start or restarted(self._last_counter[camera], header.counter):
            if camera in self.session_start and header.counter > self._last_counter[camera]:
                log.warning(
                    "camera %d: its counter jumped from %d to %d (more than %d frames): counted as a restart",
                    camera,
                    self._last_counter[camera],
                    header.counter,
                    MAX_GAP,
                )
            self.session_start[camera] = header.counter  # first frame, or the camera restarted
            self._sessions[camera] += 1
            self.ended.pop(camera, None)  # an end message of the session before is not this one's
        self._last_counter[camera] = header.counter
        if camera in self.silent:
            log.warning(
                "camera %d is back after %.1f s (frame %d)",
                camera,
                time.monotonic() - self._last_arrival[camera],
                header.counter,
            )
            self.silent.discard(camera)
        info = LiveInfo(
            camera,
            header.counter,
            header.capture_ns,
            header.send_ns,
            receive_ns,
            session=self._sessions[camera],
            session_start=self.session_start[camera],
        )
        with self._cond:
            self._last_arrival[camera] = time.monotonic()
            waiting = self._waiting.setdefault(camera, collections.deque())
            while self.config.lossless and len(waiting) >= self.config.queue_frames and self._receiving():
                self._cond.wait(self.config.poll_seconds)  # the pipeline takes one, or the drain ends
            if len(waiting) >= self.config.queue_frames:
                waiting.popleft()
                self.evicted[camera] += 1
            self._arrivals += 1
            waiting.append((self._arrivals, image, info))
            self._cond.notify_all()

    def _take_end(self, camera: int, last: int) -> None:
        """A camera's end message: kept unless its last counter is more than MAX_GAP past the last frame."""
        if camera in self._last_counter and restarted(self._last_counter[camera], last + 1):
            raise ProtocolError(
                "end_counter",
                f"camera {camera}'s end message says its last frame was {last}, "
                f"but the last one received was {self._last_counter[camera]}",
            )
        self.ended[camera] = last

    def _count_malformed(self, exc: ProtocolError) -> None:
        self.malformed[exc.reason] += 1
        if self.malformed[exc.reason] == 1 or self.malformed[exc.reason] % 1000 == 0:
            log.warning("malformed message #%d (%s): %s", self.malformed[exc.reason], exc.reason, exc)

    def _check_silence(self) -> None:
        now = time.monotonic()
        for camera, last in self._last_arrival.items():
            if camera not in self.silent and now - last > self.config.silent_after:
                self.silent.add(camera)
                log.warning("camera %d is silent: no frame for %.1f s", camera, now - last)


class StandingQueue:
    """Tells overload from a burst, as CoDel does: overloaded while even the shortest wait seen at batch
    time stayed above ``target_ms`` through a whole ``window`` of seconds."""

    def __init__(self, target_ms: float, window: float):
        self.target_ms, self.window = target_ms, window
        self.start, self.shortest, self.state = 0.0, float("inf"), False

    def overloaded(self, wait_ms: float, now: float) -> bool:
        """Note the wait of the frame about to be taken (ms) at ``now`` (s); whether the camera is
        overloaded."""
        self.shortest = min(self.shortest, wait_ms)
        if now - self.start >= self.window:
            self.state = self.shortest > self.target_ms
            self.start, self.shortest = now, float("inf")
        return self.state
