"""The live path end to end, with real ZeroMQ sockets on loopback (ipc:// and tcp://127.0.0.1): camera-sim ->
live -> listen, drops counted exactly, cameras kept apart, malformed messages refused while serving, silent
and restarting cameras, SIGINT, remote binds, CURVE keys, and the closed-loop hook. The embedded demo model.

Tests that compare live output with offline output run lossless (queues block instead of dropping), so no
result depends on how fast this machine is; every wait is on a condition with a timeout, never a sleep."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_until

from posestream.core.errors import ConfigError
from posestream.engine.live.session import LiveOptions, LiveSession
from posestream.engine.live.sim import SimOptions, camera_sim
from posestream.engine.live.source import CameraInput, CameraSource
from posestream.engine.model.predictor import Predictor
from posestream.engine.pipeline import Pipeline, PipelineConfig
from posestream.engine.sinks import AnalysisH5Reader
from posestream.engine.sinks.analysis_h5 import FRAME_DONE, FRAME_DROPPED
from posestream.engine.sources import open_source
from posestream.engine.synth import SynthConfig, write_synthetic_video
from posestream.engine.tracking import Tracker, TrackerConfig
from posestream.live import CameraPublisher, Curve, PoseSubscriber
from posestream.live.security import write_keys

POSESTREAM = str(Path(sys.executable).with_name("posestream"))
TRACKING = TrackerConfig(max_tracks=2)
FRAMES = 60


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """60 frames of two animals at the demo model's size (384x384 gray), 30 fps."""
    config = SynthConfig(frames=FRAMES, width=384, height=384, animals=2, seed=4)
    return write_synthetic_video(
        tmp_path_factory.mktemp("live") / "pair.mp4", config, slp=False, progress=False
    ).video


@pytest.fixture(scope="module")
def offline(clip):
    """The clip through the file pipeline, tracked: the reference the live path must match."""
    with Predictor(["demo"]) as predictor, open_source(clip) as video:
        return list(Pipeline(video, predictor, PipelineConfig(batch_size=4), Tracker(TRACKING, fps=30.0)))


def address(tmp_path: Path, name: str) -> str:
    return f"ipc://{tmp_path / name}"


@contextlib.contextmanager
def serving(options: LiveOptions, processor=None, models=("demo",), steps=()):
    """A LiveSession running in a thread; yields it and a dict that gets its summary when it stops."""
    session = LiveSession(list(models), options, processor, steps)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=session.run()), daemon=True)
    thread.start()
    try:
        yield session, result
    finally:
        session.stop()
        thread.join(30)
        assert not thread.is_alive(), "the live session did not stop"


def assert_same_identities(recorded, reference) -> None:
    """A frame read back from a recording has the reference's instances under the same track ids."""
    assert sorted(recorded.track_ids.tolist()) == sorted(reference.track_ids.tolist())
    for track in set(reference.track_ids.tolist()) - {-1}:
        np.testing.assert_allclose(
            recorded.points[recorded.track_ids == track],
            reference.points[reference.track_ids == track],
            atol=0.01,
        )


def receive(subscriber: PoseSubscriber, count: int, timeout: float = 60.0) -> list:
    """The next ``count`` pose messages (each waited for up to ``timeout`` s), then checks that no more
    came."""
    messages = []
    while len(messages) < count and (message := subscriber.recv(timeout=timeout)) is not None:
        messages.append(message)
    assert subscriber.recv(timeout=0.2) is None, "more pose messages than expected"
    return messages


def client_in(session: LiveSession) -> None:
    """Wait until the test's subscriber has reached the engine (poses published before are lost)."""
    assert session.publisher.wait_for_client(30.0), "the subscriber did not reach the engine"


def options(tmp_path: Path, **overrides) -> LiveOptions:
    base = dict(
        cameras=(address(tmp_path, "cam"),),
        publish=address(tmp_path, "poses"),
        status=False,
        queue_frames=64,
        lossless=True,
    )
    return LiveOptions(**{**base, **overrides})


def sim(opts: LiveOptions, **overrides) -> SimOptions:
    """camera-sim options for the session's first camera address, lossless when the session is."""
    return SimOptions(opts.cameras[0], **{"rate": 30.0, "lossless": opts.lossless, **overrides})


def test_round_trip_gives_the_offline_poses_and_identities(clip, offline, tmp_path):
    opts = options(tmp_path, tracking=TRACKING, record=str(tmp_path / "rec.h5"))
    with serving(opts) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        sent = camera_sim(str(clip), sim(opts))
        messages = receive(subscriber, FRAMES)
    assert sent.frames == FRAMES and [m.counter for m in messages] == list(range(FRAMES))
    for message, reference in zip(messages, offline):
        np.testing.assert_allclose(message.points, reference.points, atol=0.01)
        np.testing.assert_array_equal(message.track_ids, reference.track_ids)
        assert (
            message.header.time("capture")
            < message.header.time("infer_start")
            < message.header.time("publish")
        )
    stats = result["summary"].cameras[0]
    assert (
        stats["frames_sent"],
        stats["frames_received"],
        stats["frames_dropped"],
        stats["frames_published"],
    ) == (FRAMES, FRAMES, 0, FRAMES)
    with AnalysisH5Reader(tmp_path / "rec.cam0.h5") as recording:
        frames = list(recording.iter_frames())
        counters = recording._file["camera_counter"][:]
        times = recording._file["frame_times"][:]
    assert len(frames) == FRAMES and counters.tolist() == list(range(FRAMES))
    assert (times[:, -1] > times[:, 0]).all()  # published after captured
    for recorded, reference in zip(frames, offline):
        assert_same_identities(recorded, reference)


def test_an_identity_model_publishes_and_records_its_classes(clip, tmp_path):
    """SLEAP 1.x's bottom-up identity fixture, live: every animal of a frame under a different class, the
    recording names the tracks by class, and a tracker is refused for it."""
    from test_import_keras import legacy_folder

    from posestream.export.importers.importer import ImportOptions, import_model

    folder = legacy_folder("min_tracks_2node.UNet.bottomup_multiclass")
    model = import_model(folder, tmp_path / "model", ImportOptions(input_size=(384, 384))).path
    opts = options(tmp_path, record=str(tmp_path / "rec.h5"), peak_threshold=0.01)
    with serving(opts, models=[model]) as (session, _), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        camera_sim(str(clip), sim(opts))
        messages = receive(subscriber, FRAMES)
    assert sum(len(m.track_ids) for m in messages) > 0
    for message in messages:
        ids = message.track_ids.tolist()
        assert set(ids) <= {0, 1} and len(set(ids)) == len(ids)
    with AnalysisH5Reader(tmp_path / "rec.cam0.h5") as recording:
        assert (
            recording.tracked and set(recording.track_names) <= {"female", "male"} and recording.track_names
        )
    with pytest.raises(ConfigError, match="identity model"):
        LiveSession([model], options(tmp_path, tracking=TRACKING))


def test_drops_under_overload_are_counted_exactly(clip, tmp_path):
    opts = options(tmp_path, queue_frames=1, max_batch=1, record=str(tmp_path / "rec.h5"), lossless=False)
    with PoseSubscriber(opts.publish) as subscriber:
        with serving(opts) as (session, result):
            client_in(session)
            sent = camera_sim(str(clip), sim(opts, rate=2000.0, loop=True, duration=1.0))
            wait_until(lambda: 0 in session.source.ended, what="the camera's end message")  # before the stop
        stats = result["summary"].cameras[0]
        published = {m.counter for m in receive(subscriber, stats["frames_published"])}
    assert stats["frames_sent"] == sent.frames > 0
    assert stats["frames_dropped"] > 0 and stats["frames_received"] + stats["frames_dropped"] == sent.frames
    assert stats["dropped_in_queue"] + stats["dropped_in_transport"] == stats["frames_dropped"]
    assert len(published) == stats["frames_published"] == stats["frames_received"]
    with AnalysisH5Reader(tmp_path / "rec.cam0.h5") as recording:
        status = recording._file["frame_status"][:]
        counters = recording._file["camera_counter"][:]
    assert counters.tolist() == list(range(sent.frames))  # every frame sent has its place
    assert set(counters[status == FRAME_DONE].tolist()) == published
    assert int((status == FRAME_DROPPED).sum()) == stats["frames_dropped"]


def test_two_cameras_stay_apart(clip, offline, tmp_path):
    opts = options(tmp_path, tracking=TRACKING, record=str(tmp_path / "rec.h5"))
    with serving(opts) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        camera_sim(str(clip), sim(opts, cameras=2, frames="0-29"))
        messages = receive(subscriber, 60)
    by_camera = {c: [m for m in messages if m.camera == c] for c in (0, 1)}
    assert [len(v) for v in by_camera.values()] == [30, 30]
    for first, second, reference in zip(by_camera[0], by_camera[1], offline):
        assert first.counter == second.counter
        np.testing.assert_array_equal(first.track_ids, reference.track_ids)  # each camera tracked on its own
        np.testing.assert_array_equal(second.track_ids, reference.track_ids)
        np.testing.assert_allclose(second.points, reference.points, atol=0.01)
    summary = result["summary"]
    assert sorted(summary.cameras) == [0, 1] and all(
        s["frames_received"] == 30 for s in summary.cameras.values()
    )
    assert sorted(p.name for p in summary.recordings) == ["rec.cam0.h5", "rec.cam1.h5"]
    for path in summary.recordings:
        with AnalysisH5Reader(path) as recording:
            assert len(recording) == 30 and recording.track_names == ["track_0", "track_1"]


def test_malformed_messages_are_counted_while_the_engine_keeps_serving(clip, tmp_path):
    from test_live_protocol import MALFORMED, frame_message

    opts = options(tmp_path)
    with serving(opts) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        with CameraPublisher(opts.cameras[0], hwm=100, lossless=True) as camera, open_source(clip) as video:
            assert camera.wait_for_subscriber()
            good = [image for _, image in video.iter_frames()][:5]
            for i, (make, _) in enumerate(MALFORMED.values()):
                camera.send(good[0], capture_ns=time.monotonic_ns(), counter=2 * i)
                camera.send_raw(make(frame_message(shape=(384, 384, 1), counter=2 * i + 1)))
            messages = receive(subscriber, len(MALFORMED))
    assert [m.counter for m in messages] == [2 * i for i in range(len(MALFORMED))]  # every good frame served
    summary = result["summary"]
    expected = {}
    for _, reason in MALFORMED.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert summary.malformed == expected and sum(expected.values()) >= 10


def test_a_silent_camera_is_reported_and_a_restarted_one_counted_anew(clip, tmp_path, caplog):
    opts = options(tmp_path, silent_after=0.3)
    caplog.set_level(logging.WARNING, logger="posestream.live")
    with serving(opts) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        with CameraPublisher(opts.cameras[0], hwm=100, lossless=True) as camera, open_source(clip) as video:
            assert camera.wait_for_subscriber()
            image = video.read(0)
            for counter in (0, 1, 2):
                camera.send(image, counter=counter)
            wait_until(lambda: session.source.silent == {0}, what="the camera to be reported silent")
            for counter in (0, 1, 2, 3):  # the camera restarted: its counter starts again
                camera.send(image, counter=counter)
            messages = receive(subscriber, 7)
    assert [m.counter for m in messages] == [0, 1, 2, 0, 1, 2, 3]
    assert messages[3].header.flags & messages[3].header.RESTARTED
    stats = result["summary"].cameras[0]
    assert (stats["frames_sent"], stats["frames_received"], stats["frames_dropped"], stats["restarts"]) == (
        7,
        7,
        0,
        1,
    )
    assert (
        "camera 0 is silent" in caplog.text
        and "camera 0 is back" in caplog.text
        and "restarted" in caplog.text
    )


class Seen:
    """A closed-loop hook that records what it sees and fails on one frame."""

    def __init__(self, fail_on: int | None = None):
        self.frames: list[tuple[int, int, int]] = []
        self.fail_on = fail_on
        self.closed = False

    def process(self, frame, meta):
        self.frames.append((meta.camera, meta.counter, frame.n_instances))
        if meta.counter == self.fail_on:
            raise RuntimeError("the laser is unplugged")

    def close(self):
        self.closed = True


def test_the_hook_sees_every_published_frame_in_order_and_a_failure_is_reported(clip, tmp_path, caplog):
    hook = Seen(fail_on=5)
    opts = options(tmp_path, tracking=TRACKING)
    caplog.set_level(logging.ERROR, logger="posestream.live")
    with serving(opts, processor=hook) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        camera_sim(str(clip), sim(opts, rate=60.0, frames="0-19"))
        messages = receive(subscriber, 20)
    assert hook.frames == [(m.camera, m.counter, m.header.n_instances) for m in messages]
    assert [c for _, c, _ in hook.frames] == list(range(20)) and hook.closed
    assert result["summary"].hook_errors == 1
    assert "the laser is unplugged" in caplog.text and "Traceback" in caplog.text and "frame 5" in caplog.text
    assert all(m.header.time("hook") <= m.header.time("publish") for m in messages)


def test_processor_specs_are_checked(tmp_path, monkeypatch):
    from posestream.engine.live.hooks import load_processor

    (tmp_path / "rig.py").write_text(
        "class Laser:\n    def process(self, frame, meta):\n        pass\nclass Bad:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_processor("rig:Laser").__class__.__name__ == "Laser"
    for spec, message in (
        ("rig", "module:Class"),
        ("rig:Nope", "cannot load"),
        ("nowhere:X", "cannot load"),
        ("rig:Bad", "no process"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_processor(spec)


def test_curve_keys_let_in_only_the_right_peer(tmp_path):
    keys, other = write_keys(tmp_path / "keys"), write_keys(tmp_path / "other")
    shape = (8, 8, 1)
    image = np.full(shape, 7, np.uint8)
    with CameraPublisher("tcp://127.0.0.1:*", curve=Curve(keys)) as camera:
        endpoint = camera.endpoint
        right = CameraSource(CameraInput((endpoint,), curve=Curve(keys)), shape)
        wrong = CameraSource(CameraInput((endpoint,), curve=Curve(other)), shape)
        try:
            assert camera.wait_for_subscriber(30.0)  # only the right peer ever subscribes
            for _ in range(3):
                camera.send(image)
            wait_until(lambda: right.arrived[0] == 3, what="the right peer's three frames")
            assert wrong.arrived[0] == 0  # the handshake with the wrong server key never completes
        finally:
            right.close()
            wrong.close()


def run(*args, **kwargs):
    return subprocess.run(
        [POSESTREAM, *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_a_remote_bind_without_the_flag_is_refused(tmp_path):
    result = run("live", "-m", "demo", "--camera", "tcp://127.0.0.1:6999", "--publish", "tcp://0.0.0.0:7000")
    assert result.returncode == 2 and "--allow-remote" in result.stderr
    with pytest.raises(ConfigError, match="--allow-remote"):
        CameraPublisher("tcp://*:7001")


def test_sigint_stops_cleanly_and_leaves_a_readable_recording(clip, tmp_path):
    cam, out, stats = address(tmp_path, "cam"), tmp_path / "rec.h5", tmp_path / "stats.json"
    live = subprocess.Popen(
        [
            POSESTREAM,
            "live",
            "-m",
            "demo",
            "--camera",
            cam,
            "-o",
            out,
            "--stats-json",
            stats,
            "--queue",
            "64",
            "--lossless",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = run("camera-sim", clip, "--address", cam, "--rate", 60, "--wait", 60, "--lossless")
        assert "60 frames" in sent.stdout
        # lossless: the engine still serves every frame up to the camera's end
        live.send_signal(signal.SIGINT)
        stdout, stderr = live.communicate(timeout=30)
    finally:
        live.kill()
    assert live.returncode == 0, stderr
    assert "sent 60, received 60, dropped 0" in stdout
    with AnalysisH5Reader(tmp_path / "rec.cam0.h5") as recording:
        assert len(recording) == FRAMES
    import json

    figures = json.loads(stats.read_text())["cameras"]["0"]
    assert set(figures) >= {
        "frames_sent",
        "frames_received",
        "frames_dropped",
        "frames_published",
        "latency_ms",
    }
    assert set(figures["latency_ms"]) == {"p50", "p90", "p99", "p999", "max"}


def test_listen_records_what_the_engine_publishes(clip, offline, tmp_path):
    from posestream.engine.live.listen import listen

    opts = options(tmp_path, tracking=TRACKING)
    out = {}
    with serving(opts) as (session, result):
        listener = threading.Thread(
            target=lambda: out.update(
                summary=listen(
                    opts.publish, str(tmp_path / "heard.h5"), frames=30, idle_timeout=60.0, quiet=True
                )
            ),
            daemon=True,
        )
        listener.start()
        client_in(session)
        camera_sim(str(clip), sim(opts, rate=60.0, frames="0-29"))
        listener.join(60)
    summary = out["summary"]
    assert summary.frames == 30 and [p.name for p in summary.recordings] == ["heard.cam0.h5"]
    with AnalysisH5Reader(summary.recordings[0]) as recording:
        frames = list(recording.iter_frames())
        assert recording._file["camera_counter"][:].tolist() == list(range(30))
    for heard, reference in zip(frames, offline):
        assert_same_identities(heard, reference)


def test_an_oversized_message_is_counted_and_the_camera_served_again(tmp_path):
    """A frame larger than the model's is refused by reason; a message over the socket's limit makes ZeroMQ
    drop the connection, which the engine makes again: a correct camera at the same address is served."""
    cam, shape = address(tmp_path, "cam"), (8, 8, 1)
    source = CameraSource(CameraInput((cam,), lossless=True, max_message_bytes=4096), shape)
    image = np.full(shape, 7, np.uint8)
    try:
        with CameraPublisher(cam, lossless=True) as camera:
            assert camera.wait_for_subscriber(30.0)
            camera.send(np.zeros((16, 16), np.uint8), counter=0)  # larger than the model's frames
            camera.send(image, counter=1)
            wait_until(lambda: source.arrived[0] == 1, what="the frame after the larger one")
            camera.send(np.zeros((128, 128), np.uint8), counter=2)  # 16 KiB: over the socket's limit
            wait_until(
                lambda: source.malformed["dropped_connection"] == 1,
                what="the dropped connection to be made again",
            )
        with CameraPublisher(cam, lossless=True) as camera:  # a correct camera, later, at the same address
            assert camera.wait_for_subscriber(30.0)
            camera.send(image, counter=0)
            wait_until(lambda: source.arrived[0] == 2, what="the second camera's frame")
    finally:
        source.close()
    assert source.malformed == {"frame_size": 1, "dropped_connection": 1}


def test_a_counter_jump_is_a_restart_and_wild_counters_are_refused(clip, tmp_path):
    """Counters come off the wire: a jump from 2 to 10**12 starts a new count (not 10**12 dropped frames to
    record), an end message far past the last frame and a counter of 2**63 or more are malformed."""
    from posestream.live.protocol import end_parts

    opts = options(tmp_path, record=str(tmp_path / "rec.h5"))
    with serving(opts) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        client_in(session)
        with CameraPublisher(opts.cameras[0], lossless=True) as camera, open_source(clip) as video:
            assert camera.wait_for_subscriber()
            image = video.read(0)
            for counter in (0, 1, 2, 10**12):
                camera.send(image, counter=counter)
            camera.send_raw(end_parts(0, 2**63 - 1))
            camera.send(image, counter=2**63 + 5)
            camera.send(image, counter=10**12 + 1)
            messages = receive(subscriber, 5)
    assert [m.counter for m in messages] == [0, 1, 2, 10**12, 10**12 + 1]
    stats = result["summary"].cameras[0]
    assert (stats["frames_sent"], stats["frames_received"], stats["frames_dropped"], stats["restarts"]) == (
        5,
        5,
        0,
        1,
    )
    assert result["summary"].malformed == {"end_counter": 1, "counter": 1}
    with AnalysisH5Reader(tmp_path / "rec.cam0.h5") as recording:
        assert recording._file["camera_counter"][:].tolist() == [0, 1, 2, 10**12, 10**12 + 1]


def test_a_recording_path_under_a_file_is_refused_at_start(tmp_path):
    """`live -o` and `listen -o` under a file gave a FileExistsError traceback (live only at its first
    frame)."""
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "rec.h5"
    for command in (
        ["live", "-m", "demo", "--camera", address(tmp_path, "cam"), "-o", out, "--quiet"],
        ["listen", address(tmp_path, "poses"), "-o", out, "--quiet"],
    ):
        result = run(*command)
        assert result.returncode == 2 and "afile is a file, not a folder" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
