"""The camera side: ``CameraPublisher`` sends frames to the engine; it never blocks the camera, unless
lossless.

    publisher = CameraPublisher("tcp://127.0.0.1:5555", camera=0)
    for image in my_camera_frames():                 # (H, W) or (H, W, C) uint8, e.g. from pypylon
        publisher.send(image, pixel_format="mono8")  # capture time: now, or pass capture_ns
    publisher.close()

Socket: the camera binds an XPUB socket (a PUB that also hears who subscribes) with a send high-water
mark of ``hwm`` messages. A PUB socket never blocks: when the engine is not keeping up and the queue is
full, ZeroMQ drops the frame, and the engine sees the gap in the frame counter. The pixels go out
zero-copy (the buffer is lent to ZeroMQ until sent; the publisher keeps a reference until then). On
``close`` it sends each camera's last frame counter (``end.<camera>``), so the engine also counts the
frames lost after the last one it received. It sends it a few times over ``sum(END_DELAYS)`` seconds: a
subscriber whose queue overflowed is not sent anything, not even with XPUB_NODROP, until ZeroMQ sees that
the engine has caught up, so one end message sent right after an overload would be lost.

``lossless=True`` makes the queue block instead (XPUB_NODROP): ``send`` waits up to ``timeout`` seconds for
room, so an engine that also runs losslessly (``live --lossless``) gets every frame. For replaying
recorded video and for tests; a camera on a rig wants the newest frame, not every frame.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from posestream.core.errors import PosestreamError
from posestream.live.protocol import CHANNELS, FrameHeader, PixelFormat, end_parts, frame_topic
from posestream.live.security import Curve, bound_socket, read_subscriptions

DEFAULT_HWM = 4  # frames queued per subscriber before the newest are dropped
# seconds before each sending of the end messages (the engine keeps the last)
END_DELAYS = (
    0.0,
    0.02,
    0.1,
    0.3,
)

log = logging.getLogger("posestream.live")


class CameraTimeout(PosestreamError, TimeoutError):
    """A lossless send found no room for ``timeout`` seconds: the engine is gone or stuck."""


class CameraPublisher:
    """Publishes one camera's frames (or several cameras', with ``camera=`` per send) on one address."""

    def __init__(
        self,
        address: str,
        camera: int = 0,
        *,
        hwm: int = DEFAULT_HWM,
        allow_remote: bool = False,
        curve: Curve | None = None,
        context: zmq.Context | None = None,
        lossless: bool = False,
        timeout: float = 10.0,
    ):
        self.camera, self.address, self.lossless, self.timeout = camera, address, lossless, timeout
        self._socket, self._auth = bound_socket(
            context or zmq.Context.instance(),
            zmq.XPUB,
            address,
            hwm=hwm,
            allow_remote=allow_remote,
            curve=curve,
        )
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # hear every engine's subscription, not only the first
        if lossless:
            self._socket.setsockopt(zmq.XPUB_NODROP, 1)
            self._socket.sndtimeo = int(timeout * 1000)
        self._counters: dict[int, int] = {}
        self._timed_out = False  # a lossless send found no room: the engine is gone, close without waiting
        self.subscribers = 0

    @property
    def endpoint(self) -> str:
        """The address bound (with the port ZeroMQ chose for ``tcp://127.0.0.1:*``)."""
        return self._socket.last_endpoint.decode()

    def wait_for_subscriber(self, timeout: float = 10.0) -> bool:
        """Wait until an engine has subscribed (frames sent before are lost); False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.subscribers == 0 and time.monotonic() < deadline:
            if self._socket.poll(50, zmq.POLLIN):
                self.subscribers += read_subscriptions(self._socket)
        return self.subscribers > 0

    def send(
        self,
        image: np.ndarray,
        pixel_format: str | PixelFormat = "mono8",
        capture_ns: int | None = None,
        camera: int | None = None,
        counter: int | None = None,
    ) -> int:
        """Send one frame; returns its counter. Never blocks (a full queue drops the frame); lossless, waits
        for room up to ``timeout`` s, then raises ``CameraTimeout``.

        image: (H, W) or (H, W, C) uint8, C-contiguous. capture_ns: when the camera exposed it
        (``time.monotonic_ns()``; default now). counter: the camera's frame number (default: one more
        than the last frame this publisher sent for the camera).
        """
        camera = self.camera if camera is None else camera
        fmt = (
            PixelFormat[pixel_format.upper()] if isinstance(pixel_format, str) else PixelFormat(pixel_format)
        )
        pixels = np.ascontiguousarray(image, np.uint8)
        height, width = pixels.shape[:2]
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        if channels != CHANNELS[fmt]:
            raise ValueError(
                f"a {fmt.name.lower()} frame has {CHANNELS[fmt]} channels; this image has {channels}"
            )
        counter = self._counters.get(camera, -1) + 1 if counter is None else counter
        self._counters[camera] = counter
        now = time.monotonic_ns()
        header = FrameHeader(
            camera,
            counter,
            now if capture_ns is None else capture_ns,
            now,
            height,
            width,
            channels,
            fmt,
            0,
            pixels.nbytes,
        )
        try:
            self._socket.send_multipart([frame_topic(camera), header.pack(), pixels], copy=False)
        except zmq.Again:
            self._timed_out = True
            raise CameraTimeout(
                f"camera {camera} frame {counter}: the engine took no frame for {self.timeout:g} s "
                f"(lossless sending waits for it); is it running and serving {self.address}?"
            ) from None
        self.subscribers += read_subscriptions(self._socket)
        return counter

    def send_raw(self, parts: list) -> None:
        """Send any multipart message (tests use it to send malformed frames)."""
        self._socket.send_multipart(parts)

    def close(self) -> None:
        """Tell the engine the last counter of each camera (after the queued frames), then close."""
        wait = self.timeout if self.lossless else 1.0
        self._socket.setsockopt(zmq.XPUB_NODROP, 1)  # the end messages wait for room (up to 1 s) instead
        self._socket.sndtimeo = int(wait * 1000)
        self.subscribers += read_subscriptions(self._socket)
        try:
            if (
                self._counters and self.subscribers > 0 and not self._timed_out
            ):  # timed out: the engine is gone
                self._send_ends()
        except zmq.Again:
            log.warning(
                "camera %s: the engine took no message for %g s; it will not know how many frames were "
                "sent after the last it received",
                self.address,
                wait,
            )
        lossless_linger = int(wait * 1000) if not self._timed_out else 0  # lossless: every frame goes out
        self._socket.close(linger=lossless_linger if self.lossless else 500)
        if self._auth is not None:
            self._auth.stop()

    def _send_ends(self) -> None:
        """Each camera's end message, repeated after END_DELAYS (see the module docstring)."""
        for delay in END_DELAYS:
            time.sleep(delay)
            self._socket.getsockopt(zmq.EVENTS)  # ZeroMQ learns here that a full queue has room again
            for camera, last in self._counters.items():
                self._socket.send_multipart(end_parts(camera, last))

    def __enter__(self) -> CameraPublisher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
