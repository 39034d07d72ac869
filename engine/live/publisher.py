"""The engine's live output: each frame's poses and identities, and each camera's statistics.

Socket: the engine binds a PUB socket (``--publish``); clients connect SUB sockets (``PoseSubscriber``,
``posestream listen``). Sends never block: a client that does not keep up loses messages once its queue
(``hwm`` messages) is full. Sends are serialized by a lock, since the statistics thread shares the socket.
"""

from __future__ import annotations

import threading
import time

import zmq

from ..types import FramePredictions
from .protocol import PoseHeader, pose_parts, stats_parts
from .security import Curve, bound_socket


class PosePublisher:
    """Publishes poses (``publish``) and statistics (``publish_stats``) on one address."""

    def __init__(self, address: str, *, hwm: int = 1000, allow_remote: bool = False, curve: Curve | None = None,
                 context: zmq.Context | None = None):  # fmt: skip
        self.address = address
        self._socket, self._auth = bound_socket(context or zmq.Context.instance(), zmq.PUB, address, hwm=hwm,
                                                allow_remote=allow_remote, curve=curve)  # fmt: skip
        self._lock = threading.Lock()

    def publish(self, frame: FramePredictions) -> None:
        """Send one live frame's poses; stamps ``frame.live.publish_ns`` (the time the header carries)."""
        info = frame.live
        info.publish_ns = time.monotonic_ns()
        header = PoseHeader(info.camera, info.counter, frame.n_instances, frame.n_nodes, info.batch,
                            PoseHeader.RESTARTED if info.restarted else 0, info.times())  # fmt: skip
        parts = pose_parts(header, frame.points, frame.point_scores, frame.instance_scores, frame.track_ids)
        with self._lock:
            self._socket.send_multipart(parts, flags=zmq.NOBLOCK)

    def publish_stats(self, camera: int, stats: dict) -> None:
        with self._lock:
            self._socket.send_multipart(stats_parts(camera, stats), flags=zmq.NOBLOCK)

    def close(self) -> None:
        self._socket.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
