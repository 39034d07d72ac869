"""The engine's live output: each frame's poses and identities, and each camera's statistics.

Socket: the engine binds an XPUB socket (a PUB that hears subscriptions, so ``wait_for_client`` can tell
when a client is in: messages published before are lost); clients connect SUB sockets (``PoseSubscriber``,
``posestream listen``). Sends never block: a client that does not keep up loses messages once its queue
(``hwm`` messages) is full. Sends are serialized by a lock, since the statistics thread shares the socket.
"""

from __future__ import annotations

import threading
import time

import zmq

from posestream.engine.types import FrameBlock, FramePredictions
from posestream.live.protocol import POSE_PREFIX, PoseHeader, pose_parts, stats_parts
from posestream.live.security import Curve, bound_socket, read_subscriptions

LINGER_MS = 1000  # at close, how long messages still queued for connected clients may take to go out


class PosePublisher:
    """Publishes poses (``publish``) and statistics (``publish_stats``) on one address."""

    def __init__(
        self,
        address: str,
        *,
        hwm: int = 1000,
        allow_remote: bool = False,
        curve: Curve | None = None,
        context: zmq.Context | None = None,
    ):
        self.address = address
        self._socket, self._auth = bound_socket(
            context or zmq.Context.instance(),
            zmq.XPUB,
            address,
            hwm=hwm,
            allow_remote=allow_remote,
            curve=curve,
        )
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # every client's subscription, not only the first
        self._lock = threading.Lock()
        self.subscriptions = 0  # to poses: one per client (of all cameras or of one)

    def wait_for_client(self, timeout: float = 10.0, clients: int = 1) -> bool:
        """Wait until ``clients`` clients have subscribed to poses; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.subscriptions < clients and time.monotonic() < deadline:
            with self._lock:
                if self._socket.poll(20, zmq.POLLIN):
                    self.subscriptions += read_subscriptions(self._socket, POSE_PREFIX)
        return self.subscriptions >= clients

    def write_block(self, block: FrameBlock) -> None:
        """The sink's side (sinks/base.py): each frame's poses, in order."""
        for frame in block.frames():
            self.publish(frame)

    def publish(self, frame: FramePredictions) -> None:
        """Send one live frame's poses; stamps ``frame.live.publish_ns`` (the time the header carries)."""
        info = frame.live
        info.publish_ns = time.monotonic_ns()
        header = PoseHeader(
            info.camera,
            info.counter,
            frame.n_instances,
            frame.n_nodes,
            info.batch,
            PoseHeader.RESTARTED if info.restarted else 0,
            info.times(),
        )
        parts = pose_parts(header, frame.points, frame.point_scores, frame.instance_scores, frame.track_ids)
        with self._lock:
            self._socket.send_multipart(parts, flags=zmq.NOBLOCK)
            self.subscriptions += read_subscriptions(self._socket, POSE_PREFIX)

    def publish_stats(self, camera: int, stats: dict) -> None:
        with self._lock:
            self._socket.send_multipart(stats_parts(camera, stats), flags=zmq.NOBLOCK)

    def publish_parts(self, parts: list) -> None:
        """Send a message made elsewhere (the 3D step's, live/pose3d.py)."""
        with self._lock:
            self._socket.send_multipart(parts, flags=zmq.NOBLOCK)

    def close(self) -> None:
        self._socket.close(linger=LINGER_MS)  # what is published reaches the clients connected
        if self._auth is not None:
            self._auth.stop()
