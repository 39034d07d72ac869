"""The live protocol's 3D messages: one moment of several calibrated cameras joined into 3D poses.

    engine ──[pose3d | Pose3DHeader + cameras + counters + captures + points + used + track ids]──> client
           └──[stats3d | JSON]  (once a second: camera names, skeleton, counts, latencies)

``posestream live --calibration`` groups the frames of its cameras by capture time and publishes one
message per group on the pose socket, after the group's 2D messages. The message names every frame it was
made from (camera id, that camera's counter, its capture time), so a client can join it with the 2D poses.
Two parts: the topic, then the header and the arrays one after the other (each ZeroMQ part costs the
engine a hand-over of Python's GIL, and a live group's step is timed in tenths of a millisecond).
Little-endian, times in ``time.monotonic_ns()`` as the rest of the protocol (``protocol.py``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from posestream.live.protocol import VERSION, ProtocolError, _buffer

POSE3D_TOPIC, STATS3D_TOPIC = b"pose3d", b"stats3d"
POSE3D_MAGIC = b"PS3D"


@dataclass(frozen=True)
class Pose3DHeader:
    """What the engine says about one group. ``group``: its number (0, 1, ...: a gap is never a drop, every
    group is published). flags: bit 0 set when some calibrated camera had no frame in the group."""

    group: int
    n_cameras: int
    n_tracks: int
    n_nodes: int
    reference: int  # the camera id whose instances (and track ids) the 3D poses are; -1: none saw anyone
    flags: int
    capture_ns: int  # the group's first frame's capture time
    solve_ns: int  # how long the triangulation took
    publish_ns: int

    # magic, version, flags, cameras, tracks, nodes, reference, group, capture, solve, publish
    STRUCT = struct.Struct("<4sHHIIIiQqqq")
    SIZE = STRUCT.size  # 56 bytes
    PARTIAL = 1

    def pack(self) -> bytes:
        return self.STRUCT.pack(
            POSE3D_MAGIC,
            VERSION,
            self.flags,
            self.n_cameras,
            self.n_tracks,
            self.n_nodes,
            self.reference,
            self.group,
            self.capture_ns,
            self.solve_ns,
            self.publish_ns,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> Pose3DHeader:
        if memoryview(data).nbytes != cls.SIZE:
            raise ProtocolError(
                "header_size", f"3D pose header is {memoryview(data).nbytes} bytes, expected {cls.SIZE}"
            )
        magic, version, flags, cameras, tracks, nodes, reference, group, capture, solve, publish = (
            cls.STRUCT.unpack(data)
        )
        if magic != POSE3D_MAGIC:
            raise ProtocolError(
                "bad_magic", f"bad magic {magic!r} in a 3D pose header (expected {POSE3D_MAGIC!r})"
            )
        if version != VERSION:
            raise ProtocolError(
                "version", f"3D pose header version {version}; this client speaks version {VERSION}"
            )
        return cls(group, cameras, tracks, nodes, reference, flags, capture, solve, publish)


@dataclass
class Pose3DMessage:
    """One group's 3D poses as a client receives them.

    cameras: (C,) int32 camera ids of the frames joined; counters: (C,) int64 each one's frame counter;
    captures: (C,) int64 each one's capture time (ns); points: (T, N, 3) float32 in calibration units, NaN
    where unsolved; cameras_used: (T, N) uint8 cameras each point was solved from; track_ids: (T,) int32,
    the reference camera's (the first calibrated camera in the group), -1 untracked.
    """

    header: Pose3DHeader
    cameras: np.ndarray
    counters: np.ndarray
    captures: np.ndarray
    points: np.ndarray
    cameras_used: np.ndarray
    track_ids: np.ndarray

    @property
    def group(self) -> int:
        return self.header.group

    @property
    def partial(self) -> bool:
        return bool(self.header.flags & Pose3DHeader.PARTIAL)

    @property
    def latency_ms(self) -> float:
        """From the last capture in the group to the 3D poses' publication, on the engine's clock."""
        return (self.header.publish_ns - int(self.captures.max(initial=self.header.capture_ns))) / 1e6


_ARRAYS = (  # name, wire dtype, shape from (C, T, N)
    ("cameras", "<i4", lambda c, t, n: (c,)),
    ("counters", "<i8", lambda c, t, n: (c,)),
    ("captures", "<i8", lambda c, t, n: (c,)),
    ("points", "<f4", lambda c, t, n: (t, n, 3)),
    ("cameras_used", "u1", lambda c, t, n: (t, n)),
    ("track_ids", "<i4", lambda c, t, n: (t,)),
)


def pose3d_parts(header: Pose3DHeader, *arrays) -> list:
    """The two-part message of one group (``arrays`` in Pose3DMessage's order, converted to the wire's
    dtypes)."""
    wire = [
        np.ascontiguousarray(a, dtype).tobytes() for a, (_, dtype, _) in zip(arrays, _ARRAYS, strict=True)
    ]
    return [POSE3D_TOPIC, b"".join([header.pack(), *wire])]


def parse_pose3d(parts: list) -> Pose3DMessage:
    """A 3D pose message ``[topic, header + arrays]``."""
    if len(parts) != 2:
        raise ProtocolError("parts", f"a 3D pose message has 2 parts, got {len(parts)}")
    data = _buffer(parts[1])
    header = Pose3DHeader.unpack(data[: Pose3DHeader.SIZE])
    sizes = header.n_cameras, header.n_tracks, header.n_nodes
    shapes = [shape_of(*sizes) for _, _, shape_of in _ARRAYS]
    lengths = [math.prod(shape) * np.dtype(dtype).itemsize for shape, (_, dtype, _) in zip(shapes, _ARRAYS)]
    if data.nbytes != Pose3DHeader.SIZE + sum(lengths):
        raise ProtocolError(
            "payload_size",
            f"3D pose message of group {header.group} is {data.nbytes} bytes, expected "
            f"{Pose3DHeader.SIZE + sum(lengths)} for {sizes[0]} cameras, {sizes[1]} tracks, {sizes[2]} nodes",
        )
    arrays, start = {}, Pose3DHeader.SIZE
    for (name, dtype, _), shape, length in zip(_ARRAYS, shapes, lengths):
        arrays[name] = np.frombuffer(data[start : start + length], dtype).reshape(shape)
        start += length
    return Pose3DMessage(header, **arrays)


def stats3d_parts(stats: dict) -> list:
    return [STATS3D_TOPIC, json.dumps(stats).encode()]
