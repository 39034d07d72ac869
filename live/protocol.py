"""The live wire protocol, version 1: camera frames in, poses out, as ZeroMQ multipart messages.

  camera ──[frame.<camera> | FrameHeader | pixels]──> engine ──[pose.<camera> | PoseHeader | arrays]──> client
         [end.<camera> | EndHeader]  (when it stops)         └──[stats.<camera> | JSON]  (once a second)

Every integer and float is little-endian. Times are nanoseconds of ``time.monotonic_ns()`` (camera and
engine on one host share that clock). A message that breaks a rule below raises ``ProtocolError``, whose
``reason`` is a short key the engine counts by; the engine logs it and carries on.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from posestream.core.errors import PosestreamError

VERSION = 1
FRAME_MAGIC = b"PSFR"
END_MAGIC = b"PSEN"
POSE_MAGIC = b"PSPO"
FRAME_PREFIX, END_PREFIX, POSE_PREFIX, STATS_PREFIX = b"frame.", b"end.", b"pose.", b"stats."

LIVE_STAGES = (
    "capture",
    "send",
    "receive",
    "infer_start",
    "infer_end",
    "postprocess",
    "track",
    "hook",
    "publish",
)
"""The stages a live frame goes through, in order; a pose message carries each one's time."""


class ProtocolError(PosestreamError, ValueError):
    """A message that does not follow the protocol. ``reason``: a short key (``bad_magic``,
    ``version``...)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class PixelFormat(IntEnum):
    MONO8 = 0  # (H, W, 1) gray
    RGB8 = 1  # (H, W, 3) red, green, blue
    BGR8 = 2  # (H, W, 3) blue, green, red (OpenCV's order); the engine swaps it to RGB


CHANNELS = {PixelFormat.MONO8: 1, PixelFormat.RGB8: 3, PixelFormat.BGR8: 3}
DTYPES = {0: np.dtype(np.uint8)}  # dtype code -> numpy dtype; 8-bit pixels only in version 1


def frame_topic(camera: int) -> bytes:
    return FRAME_PREFIX + str(camera).encode()


def pose_topic(camera: int) -> bytes:
    return POSE_PREFIX + str(camera).encode()


def stats_topic(camera: int) -> bytes:
    return STATS_PREFIX + str(camera).encode()


# ---------------------------------------------------------------------------
# Camera -> engine
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameHeader:
    """What a camera says about one frame; ``counter`` is its own frame count (a gap is a dropped frame)."""

    camera: int
    counter: int
    capture_ns: int
    send_ns: int
    height: int
    width: int
    channels: int
    pixel_format: PixelFormat
    dtype: int = 0
    payload_bytes: int = 0

    # magic, version, camera, counter, capture ns, send ns, height, width, channels, dtype, pixel format,
    # (pad), payload bytes: 52 bytes, padded with zeros to SIZE
    STRUCT = struct.Struct("<4sHHQqqIIBBBxQ")
    SIZE = 64

    def pack(self) -> bytes:
        fields = (
            FRAME_MAGIC,
            VERSION,
            self.camera,
            self.counter,
            self.capture_ns,
            self.send_ns,
            self.height,
            self.width,
            self.channels,
            self.dtype,
            int(self.pixel_format),
            self.payload_bytes,
        )
        return self.STRUCT.pack(*fields).ljust(self.SIZE, b"\0")

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> FrameHeader:
        """Parse and check a header: magic, version, codes, and sizes that agree with each other."""
        if memoryview(data).nbytes != cls.SIZE:
            raise ProtocolError(
                "header_size", f"frame header is {memoryview(data).nbytes} bytes, expected {cls.SIZE}"
            )
        magic, version, camera, counter, capture, send, height, width, channels, dtype, fmt, payload = (
            cls.STRUCT.unpack_from(data)
        )
        if magic != FRAME_MAGIC:
            raise ProtocolError(
                "bad_magic", f"bad magic {bytes(magic)!r} in a frame header (expected {FRAME_MAGIC!r})"
            )
        if version != VERSION:
            raise ProtocolError(
                "version", f"frame header version {version}; this engine speaks version {VERSION}"
            )
        if dtype not in DTYPES:
            raise ProtocolError(
                "dtype", f"unknown pixel dtype code {dtype} (version {VERSION} knows {sorted(DTYPES)})"
            )
        try:
            pixel_format = PixelFormat(fmt)
        except ValueError:
            raise ProtocolError(
                "pixel_format", f"unknown pixel format code {fmt} (mono8=0, rgb8=1, bgr8=2)"
            ) from None
        if channels != CHANNELS[pixel_format]:
            raise ProtocolError(
                "channels",
                f"{pixel_format.name.lower()} frames have {CHANNELS[pixel_format]} "
                f"channels, the header says {channels}",
            )
        check_counter(counter, "frame header")
        expected = height * width * channels * DTYPES[dtype].itemsize
        if payload != expected or not expected:
            raise ProtocolError(
                "payload_size",
                f"header payload length {payload} does not match its frame size "
                f"{width}x{height}x{channels} ({expected} bytes)",
            )
        return cls(camera, counter, capture, send, height, width, channels, pixel_format, dtype, payload)

    def image(self, payload: bytes | memoryview) -> np.ndarray:
        """The pixels over ``payload`` (no copy), RGB order for colour.  # (H, W, C) uint8"""
        if memoryview(payload).nbytes != self.payload_bytes:
            raise ProtocolError(
                "payload_size",
                f"camera {self.camera} frame {self.counter}: {memoryview(payload).nbytes} "
                f"payload bytes, the header says {self.payload_bytes}",
            )
        image = np.frombuffer(payload, DTYPES[self.dtype]).reshape(self.height, self.width, self.channels)
        return image[..., ::-1] if self.pixel_format is PixelFormat.BGR8 else image


def parse_frame(parts: list, frame_shape: tuple[int, int, int]) -> tuple[FrameHeader, np.ndarray]:
    """A frame message ``[topic, header, pixels]`` as its header and image (over the message's buffer).

    frame_shape: the (H, W, C) the model takes; a frame of another size is refused here, with its reason.
    """
    if len(parts) != 3:
        raise ProtocolError("parts", f"a frame message has 3 parts (topic, header, pixels), got {len(parts)}")
    topic, header_bytes, payload = (_buffer(p) for p in parts)
    if not bytes(topic).startswith(FRAME_PREFIX):
        raise ProtocolError("topic", f"topic {bytes(topic)[:32]!r} is not frame.<camera>")
    header = FrameHeader.unpack(header_bytes)
    if bytes(topic) != frame_topic(header.camera):
        raise ProtocolError(
            "topic", f"topic {bytes(topic)[:32]!r} but the header says camera {header.camera}"
        )
    image = header.image(payload)
    if image.shape != tuple(frame_shape):
        problem = frame_mismatch(image.shape, frame_shape)
        raise ProtocolError("frame_size", f"camera {header.camera} frame {header.counter}: {problem}")
    return header, image


def frame_mismatch(shape: tuple[int, int, int], model_shape: tuple[int, int, int]) -> str:
    """What differs between a camera's (H, W, C) frames and the model's, and what to do about it."""
    (height, width, channels), (model_height, model_width, model_channels) = shape, model_shape
    if (height, width) != (model_height, model_width):
        return (
            f"{width}x{height} frames, the model takes {model_width}x{model_height}: send frames of that "
            f"size, or re-export the model with --input-size {height}x{width}"
        )
    names = {1: "gray (mono8)", 3: "colour (rgb8 or bgr8)"}
    return f"{names[channels]} frames, the model takes {names[model_channels]} frames: send those"


def _buffer(part) -> memoryview:
    """A message part (zmq.Frame or bytes) as a memoryview, without copying."""
    return part.buffer if hasattr(part, "buffer") else memoryview(part)


END_STRUCT = struct.Struct("<4sHHQ")  # magic, version, camera, the counter of its last frame


def end_parts(camera: int, last_counter: int) -> list:
    """The message a camera sends when it stops: the counter of the last frame it sent (so the engine counts
    frames lost after the last one it received)."""
    return [END_PREFIX + str(camera).encode(), END_STRUCT.pack(END_MAGIC, VERSION, camera, last_counter)]


def parse_end(parts: list) -> tuple[int, int]:
    """(camera, last counter) of an end message."""
    if len(parts) != 2 or _buffer(parts[1]).nbytes != END_STRUCT.size:
        raise ProtocolError("parts", f"an end message has 2 parts, the second {END_STRUCT.size} bytes")
    magic, version, camera, last = END_STRUCT.unpack(_buffer(parts[1]))
    if magic != END_MAGIC:
        raise ProtocolError("bad_magic", f"bad magic {magic!r} in an end message (expected {END_MAGIC!r})")
    if version != VERSION:
        raise ProtocolError("version", f"end message version {version}; this engine speaks version {VERSION}")
    return camera, check_counter(last, "end message")


def check_counter(counter: int, where: str) -> int:
    """A frame counter from the wire, refused from 2**63 on (files and clients keep them as int64)."""
    if counter >= 1 << 63:
        raise ProtocolError("counter", f"{where}: frame counter {counter} is 2**63 or more")
    return counter


# ---------------------------------------------------------------------------
# Engine -> clients
# ---------------------------------------------------------------------------

STAGES = LIVE_STAGES
"""The stage times a pose header carries, in order: when each was done with the frame (ns)."""


@dataclass(frozen=True)
class PoseHeader:
    """What the engine says about one frame's poses. ``times``: ns per stage of ``STAGES``.

    flags: bit 0 set when the camera restarted (its counter went back) just before this frame.
    """

    camera: int
    counter: int
    n_instances: int
    n_nodes: int
    batch: int  # frames in the model batch this frame was part of
    flags: int
    times: tuple[int, ...]

    # magic, version, camera, counter, n instances, n nodes, batch size, flags, then one q per stage
    STRUCT = struct.Struct("<4sHHQIIHH" + "q" * len(STAGES))
    SIZE = STRUCT.size  # 100 bytes
    RESTARTED = 1

    def pack(self) -> bytes:
        return self.STRUCT.pack(
            POSE_MAGIC,
            VERSION,
            self.camera,
            self.counter,
            self.n_instances,
            self.n_nodes,
            self.batch,
            self.flags,
            *self.times,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> PoseHeader:
        if memoryview(data).nbytes != cls.SIZE:
            raise ProtocolError(
                "header_size", f"pose header is {memoryview(data).nbytes} bytes, expected {cls.SIZE}"
            )
        magic, version, camera, counter, n, nodes, batch, flags, *times = cls.STRUCT.unpack(data)
        if magic != POSE_MAGIC:
            raise ProtocolError(
                "bad_magic", f"bad magic {magic!r} in a pose header (expected {POSE_MAGIC!r})"
            )
        if version != VERSION:
            raise ProtocolError(
                "version", f"pose header version {version}; this client speaks version {VERSION}"
            )
        return cls(camera, counter, n, nodes, batch, flags, tuple(times))

    def time(self, stage: str) -> int:
        return self.times[STAGES.index(stage)]


@dataclass
class PoseMessage:
    """One frame's poses as a client receives them.

    points: (n, nodes, 2) float32, NaN where a node is missing; point_scores: (n, nodes) float32;
    instance_scores: (n,) float32; track_ids: (n,) int32, -1 for an untracked instance.
    """

    header: PoseHeader
    points: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    track_ids: np.ndarray

    @property
    def camera(self) -> int:
        return self.header.camera

    @property
    def counter(self) -> int:
        return self.header.counter

    @property
    def latency_ms(self) -> float:
        """Capture to publish, on the engine's clock."""
        return (self.header.time("publish") - self.header.time("capture")) / 1e6


_POSE_ARRAYS = (
    ("points", "<f4", 2),
    ("point_scores", "<f4", 1),
    ("instance_scores", "<f4", 0),
    ("track_ids", "<i4", 0),
)


def pose_parts(header: PoseHeader, points, point_scores, instance_scores, track_ids) -> list:
    """The multipart message of one frame's poses (arrays converted to the wire's dtypes)."""
    arrays = (points, point_scores, instance_scores, track_ids)
    return [pose_topic(header.camera), header.pack()] + [
        np.ascontiguousarray(a, dtype) for a, (_, dtype, _) in zip(arrays, _POSE_ARRAYS)
    ]


def parse_pose(parts: list) -> PoseMessage:
    """A pose message ``[topic, header, points, point scores, instance scores, track ids]``."""
    if len(parts) != 6:
        raise ProtocolError("parts", f"a pose message has 6 parts, got {len(parts)}")
    header = PoseHeader.unpack(_buffer(parts[1]))
    n, nodes = header.n_instances, header.n_nodes
    shapes = {"points": (n, nodes, 2), "point_scores": (n, nodes), "instance_scores": (n,), "track_ids": (n,)}
    arrays = {}
    for part, (name, dtype, _) in zip(parts[2:], _POSE_ARRAYS):
        data = _buffer(part)
        size = int(np.prod(shapes[name])) * 4
        if data.nbytes != size:
            raise ProtocolError(
                "payload_size",
                f"pose {name} of camera {header.camera} frame {header.counter} "
                f"is {data.nbytes} bytes, expected {size}",
            )
        arrays[name] = np.frombuffer(data, dtype).reshape(shapes[name])
    return PoseMessage(header, **arrays)


def stats_parts(camera: int, stats: dict) -> list:
    return [stats_topic(camera), json.dumps(stats).encode()]


def parse_stats(parts: list) -> dict:
    if len(parts) != 2:
        raise ProtocolError("parts", f"a stats message has 2 parts, got {len(parts)}")
    try:
        return json.loads(bytes(_buffer(parts[1])))
    except ValueError as exc:
        raise ProtocolError("json", f"stats message is not JSON ({exc})") from None
