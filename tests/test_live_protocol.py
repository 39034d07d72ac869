"""The live wire protocol: headers and messages round trip, and every malformed kind is refused with its
reason; addresses off the host need the flag; the latency histogram's percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.core.errors import ConfigError
from posestream.engine.live.info import LiveInfo
from posestream.engine.live.stats import CameraLedger, LatencyHistogram
from posestream.live.protocol import (
    STAGES,
    FrameHeader,
    PixelFormat,
    PoseHeader,
    ProtocolError,
    frame_topic,
    parse_frame,
    parse_pose,
    pose_parts,
)
from posestream.live.security import check_address

SHAPE = (6, 8, 1)


def frame_message(camera=0, counter=5, fmt=PixelFormat.MONO8, shape=SHAPE) -> list:
    pixels = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    header = FrameHeader(camera, counter, 111, 222, shape[0], shape[1], shape[2], fmt, 0, pixels.nbytes)
    return [frame_topic(camera), header.pack(), pixels.tobytes()]


def test_frame_message_round_trips():
    header, image = parse_frame(frame_message(camera=3, counter=42), SHAPE)
    assert (header.camera, header.counter, header.capture_ns, header.send_ns) == (3, 42, 111, 222)
    assert image.shape == SHAPE and image[5, 7, 0] == 47
    assert len(FrameHeader(0, 0, 0, 0, 1, 1, 1, PixelFormat.MONO8, 0, 1).pack()) == FrameHeader.SIZE == 64


def test_bgr_frames_arrive_in_rgb_order():
    topic, header, _ = frame_message(fmt=PixelFormat.BGR8, shape=(2, 2, 3))
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    _, image = parse_frame([topic, header, bgr.tobytes()], (2, 2, 3))
    assert image[0, 0].tolist() == [0, 0, 255]


def corrupt(parts: list, offset: int, value: bytes) -> list:
    header = bytearray(parts[1])
    header[offset : offset + len(value)] = value
    return [parts[0], bytes(header), parts[2]]


MALFORMED = {
    "bad magic": (lambda m: corrupt(m, 0, b"XXXX"), "bad_magic"),
    "unknown version": (lambda m: corrupt(m, 4, (9).to_bytes(2, "little")), "version"),
    "header payload length off": (lambda m: corrupt(m, 44, (47).to_bytes(8, "little")), "payload_size"),
    "payload shorter than the header says": (lambda m: [m[0], m[1], m[2][:-1]], "payload_size"),
    "truncated multipart": (lambda m: m[:2], "parts"),
    "extra part": (lambda m: m + [b"x"], "parts"),
    "unknown dtype": (lambda m: corrupt(m, 41, b"\x07"), "dtype"),
    "unknown pixel format": (lambda m: corrupt(m, 42, b"\x09"), "pixel_format"),
    "channels that do not match the format": (lambda m: corrupt(m, 42, b"\x01"), "channels"),
    "frame size other than the model's": (lambda m: frame_message(shape=(6, 9, 1)), "frame_size"),
    "topic of another camera": (lambda m: [frame_topic(7), m[1], m[2]], "topic"),
    "short header": (lambda m: [m[0], m[1][:40], m[2]], "header_size"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_frame_messages_are_refused_with_their_reason(kind):
    make, reason = MALFORMED[kind]
    with pytest.raises(ProtocolError) as error:
        parse_frame(make(frame_message()), SHAPE)
    assert error.value.reason == reason
    assert isinstance(error.value, ValueError)


def test_pose_message_round_trips():
    points = np.random.default_rng(0).random((2, 3, 2), np.float32)
    points[1, 2] = np.nan
    header = PoseHeader(1, 9, 2, 3, 4, PoseHeader.RESTARTED, tuple(range(len(STAGES))))
    message = parse_pose(pose_parts(header, points, np.ones((2, 3)), [0.5, 0.7], [4, -1]))
    np.testing.assert_array_equal(message.points, points)
    assert message.track_ids.tolist() == [4, -1] and message.instance_scores.dtype == np.float32
    assert (message.camera, message.counter, message.header.batch) == (1, 9, 4)
    assert message.header.time("publish") == len(STAGES) - 1


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:5555", "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/x"]
)
def test_loopback_addresses_need_no_flag(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.2:5555"])
def test_remote_addresses_need_the_flag(address):
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_address(address)
    assert check_address(address, allow_remote=True) == address


def test_bad_addresses_say_what_they_should_look_like():
    for address in ("udp://127.0.0.1:5", "127.0.0.1:5555", "tcp://127.0.0.1"):
        with pytest.raises(ConfigError):
            check_address(address)


def test_latency_percentiles_are_within_a_percent():
    values = np.random.default_rng(1).lognormal(2.0, 0.5, 20_000)
    histogram = LatencyHistogram()
    for v in values:
        histogram.add(float(v))
    for q in (50, 90, 99, 99.9):
        assert histogram.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.015)
    assert histogram.max_ms == values.max()


def test_ledger_counts_gaps_and_restarts_exactly():
    ledger = CameraLedger(0)
    gaps = [list(ledger.arrived(LiveInfo(0, c, 0, 0, 0))) for c in (3, 4, 7, 8, 0, 2)]
    assert gaps == [[], [], [5, 6], [], [], [1]]
    assert (ledger.sent, ledger.received, ledger.dropped, ledger.restarts) == (6 + 3, 6, 3, 1)
