"""The client side: ``PoseSubscriber`` receives the engine's live poses and statistics.

    with PoseSubscriber("tcp://127.0.0.1:5556") as poses:
        while True:
            message = poses.recv(timeout=1.0)   # PoseMessage, or None after a second without one
            if message is not None:
                print(message.camera, message.counter, message.track_ids, message.points[:, 0])

Socket: a SUB socket that connects to the engine's PUB (``--publish``); ``cameras`` limits it to some cameras'
topics. Statistics (``stats.<camera>``, once a second) are kept in ``stats`` by camera, not returned by
``recv``. An engine with a calibration (``live --calibration``) also publishes 3D poses: ``recv`` returns
them as ``Pose3DMessage`` (``pose3d.py``) unless ``cameras`` is given, and their statistics go to ``stats3d``.
"""

from __future__ import annotations

import time

import zmq

from posestream.live.pose3d import POSE3D_TOPIC, STATS3D_TOPIC, Pose3DMessage, parse_pose3d
from posestream.live.protocol import (
    POSE_PREFIX,
    STATS_PREFIX,
    PoseMessage,
    ProtocolError,
    parse_pose,
    parse_stats,
    pose_topic,
    stats_topic,
)
from posestream.live.security import Curve, connected_socket


class PoseSubscriber:
    """Live poses from an engine; ``recv`` returns them in the order the engine published them."""

    def __init__(
        self,
        address: str,
        cameras: list[int] | None = None,
        *,
        allow_remote: bool = False,
        curve: Curve | None = None,
        context: zmq.Context | None = None,
        hwm: int = 1000,
    ):
        self.address = address
        self.cameras = None if cameras is None else set(cameras)
        # Topics are prefixes: pose.1 also lets pose.12 through, which recv filters out.
        topics = (
            [POSE_PREFIX, STATS_PREFIX, POSE3D_TOPIC, STATS3D_TOPIC]
            if cameras is None
            else [t for c in cameras for t in (pose_topic(c), stats_topic(c))]
        )
        self._socket = connected_socket(
            context or zmq.Context.instance(),
            address,
            topics,
            hwm=hwm,
            allow_remote=allow_remote,
            curve=curve,
        )
        self.stats: dict[int, dict] = {}
        self.stats3d: dict = {}  # the 3D step's last statistics (an engine with a calibration)
        self.malformed = 0

    def recv(self, timeout: float | None = 1.0) -> PoseMessage | Pose3DMessage | None:
        """The next pose message (2D, or 3D from an engine with a calibration), or None if none came within
        ``timeout`` seconds (None: wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(left):
                return None
            parts = self._socket.recv_multipart(copy=False)
            topic = bytes(parts[0].buffer)
            try:
                if topic.startswith(STATS_PREFIX):  # kept, not returned
                    stats = parse_stats(parts)
                    self.stats[int(stats.get("camera", -1))] = stats
                    continue
                if topic == STATS3D_TOPIC:
                    self.stats3d = parse_stats(parts)
                    continue
                if topic == POSE3D_TOPIC:
                    return parse_pose3d(parts)
                message = parse_pose(parts)
                if self.cameras is None or message.camera in self.cameras:
                    return message
            except ProtocolError:
                self.malformed += 1

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> PoseSubscriber:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
