"""Live frames of several cameras grouped by capture time: late, silent and restarted cameras."""

from __future__ import annotations

import pytest

from posestream.core.errors import ConfigError
from posestream.multiview.live_groups import FrameGrouper

MS = 1_000_000  # ns
CAMERAS = ["back", "side", "top"]


def test_frames_of_one_moment_form_one_group_in_capture_order():
    grouper = FrameGrouper(CAMERAS, tolerance_ms=5, max_wait_ms=20)
    left = []
    for moment in range(5):
        capture = 1_000 * MS + moment * 33 * MS
        for offset, camera in enumerate(CAMERAS):  # each camera's clock a little apart, arriving in turn
            left += grouper.add(camera, capture + offset * MS, (camera, moment), now_ns=capture + 10 * MS)
    assert [sorted(g.frames) for g in left] == [sorted(CAMERAS)] * 5
    assert [g.frames["top"][1] for g in left] == [0, 1, 2, 3, 4]
    assert grouper.counts.complete == 5 and grouper.counts.partial == 0 and not grouper.open


def test_a_late_camera_delays_a_group_by_at_most_the_wait_then_counts_as_late():
    grouper = FrameGrouper(CAMERAS, tolerance_ms=5, max_wait_ms=20)
    assert grouper.add("back", 100 * MS, "b0", now_ns=105 * MS) == []
    assert grouper.add("side", 101 * MS, "s0", now_ns=106 * MS) == []
    assert grouper.expire(now_ns=124 * MS) == []  # 19 ms after the group opened: still waiting for top
    left = grouper.expire(now_ns=125 * MS)  # 20 ms: it leaves with what it has
    assert len(left) == 1 and left[0].missing(CAMERAS) == ["top"]
    assert grouper.add("top", 100 * MS, "t0", now_ns=140 * MS) == []  # top's frame of that moment: too late
    assert grouper.counts.late == 1 and grouper.counts.partial == 1 and not grouper.open


def test_a_silent_camera_never_holds_groups_longer_than_the_wait():
    grouper = FrameGrouper(CAMERAS, tolerance_ms=5, max_wait_ms=20)
    left = []
    for moment in range(10):
        capture = moment * 33 * MS
        left += grouper.add("back", capture, moment, now_ns=capture + 2 * MS)
        left += grouper.add("side", capture + MS, moment, now_ns=capture + 3 * MS)
        left += grouper.expire(now_ns=capture + 30 * MS)  # top says nothing
    assert len(left) == 10 and all(g.missing(CAMERAS) == ["top"] for g in left)
    assert all(g.opened_ns + 20 * MS <= moment * 33 * MS + 30 * MS for moment, g in enumerate(left))
    assert grouper.counts.partial == 10 and grouper.counts.complete == 0


def test_a_restarted_camera_keeps_grouping_and_every_frame_is_counted_once():
    grouper = FrameGrouper(["a", "b"], tolerance_ms=5, max_wait_ms=20)
    sent = grouped = 0
    for moment in range(30):
        capture = moment * 33 * MS
        counter_b = moment if moment < 15 else moment - 15  # b restarts at moment 15: its counter goes back
        for camera, counter in (("a", moment), ("b", counter_b)):
            if camera == "b" and moment in (15, 16):  # b is away while it restarts
                continue
            sent += 1
            grouped += sum(len(g.frames) for g in grouper.add(camera, capture, counter, now_ns=capture + MS))
        grouped += sum(len(g.frames) for g in grouper.expire(now_ns=capture + 25 * MS))
    grouped += sum(len(g.frames) for g in grouper.flush())
    counts = grouper.counts
    assert grouped + counts.late == sent == 58
    assert counts.complete == 28 and counts.partial == 2 and counts.late == 0


def test_grouping_settings_are_checked():
    with pytest.raises(ConfigError, match="at least 2 cameras"):
        FrameGrouper(["only"])
    with pytest.raises(ConfigError, match="--group-tolerance-ms 0 and --group-wait-ms 20.0 must both be > 0"):
        FrameGrouper(CAMERAS, tolerance_ms=0)
    with pytest.raises(ConfigError, match="not one of the grouped cameras"):
        FrameGrouper(CAMERAS).add("front", 0, None, now_ns=0)


def test_a_group_is_triangulated_with_each_camera_paired_to_the_reference():
    import numpy as np

    from posestream.engine.types import FramePredictions
    from posestream.multiview.live_3d import GroupTriangulator
    from posestream.multiview.synth_scene import SYNTH_SKELETON, SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=3, animals=3, frames=4, size=(320, 256), seed=8)
    rig, (poses, _) = scene_rig(config), scene_poses(config)  # (F, 3, 9, 3)
    grouper = FrameGrouper(rig.names, tolerance_ms=5, max_wait_ms=20)
    triangulate = GroupTriangulator(rig, SYNTH_SKELETON)
    orders = {"cam0": [2, 0, 1], "cam1": [1, 2, 0], "cam2": [0, 1, 2]}  # each camera's own instance order
    for frame in range(4):
        capture = frame * 33 * MS
        for camera in rig.cameras:
            order = orders[camera.name]
            seen = camera.project(poses[frame][order]).astype(np.float32)
            found = FramePredictions(frame, seen, np.ones(seen.shape[:2]), np.ones(3), np.array([7, 8, 9]))
            for group in grouper.add(camera.name, capture, found, now_ns=capture + MS):
                result = triangulate(group)
                assert result.reference == "cam0" and result.cameras == ["cam0", "cam1", "cam2"]
                assert list(result.track_ids) == [7, 8, 9]  # cam0's ids, cam0's order
                assert np.abs(result.points - poses[frame][orders["cam0"]]).max() < 0.05
                assert result.solve_ns > 0
    assert grouper.counts.complete == 4


def test_a_group_where_some_cameras_saw_nobody_is_joined_from_the_others():
    import numpy as np

    from posestream.engine.types import FramePredictions
    from posestream.multiview.live_3d import GroupTriangulator
    from posestream.multiview.live_groups import FrameGroup
    from posestream.multiview.synth_scene import SYNTH_SKELETON, SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=3, animals=1, frames=1, size=(320, 256), seed=9)
    rig, (poses, _) = scene_rig(config), scene_poses(config)
    empty = FramePredictions.empty(0, 9)
    seen = {c.name: c.project(poses[0]).astype(np.float32) for c in rig.cameras}

    def found(name):
        return FramePredictions(0, seen[name], np.ones((1, 9)), np.ones(1), np.array([4]))

    triangulate = GroupTriangulator(rig, SYNTH_SKELETON)
    result = triangulate(FrameGroup(0, 0, {"cam0": empty, "cam1": found("cam1"), "cam2": found("cam2")}))
    assert result.cameras == ["cam1", "cam2"] and np.abs(result.points - poses[0]).max() < 0.05
    alone = triangulate(FrameGroup(0, 0, {"cam0": empty, "cam1": found("cam1")}))
    assert alone.cameras == ["cam1"] and np.isnan(alone.points).all() and list(alone.track_ids) == [4]
    nobody = triangulate(FrameGroup(0, 0, {"cam0": empty}))
    assert nobody.points.shape == (0, 9, 3) and nobody.cameras == []


def test_two_cameras_that_each_saw_a_different_animal_are_not_joined():
    """One animal per camera is no proof of one animal: a pair that reprojects further apart than the outlier
    threshold is left apart, and a point one camera saw is not solved."""
    import numpy as np

    from posestream.engine.types import FramePredictions
    from posestream.multiview.live_3d import GroupTriangulator
    from posestream.multiview.live_groups import FrameGroup
    from posestream.multiview.synth_scene import SYNTH_SKELETON, SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=3, animals=2, frames=1, size=(320, 256), seed=9)
    rig, (poses, _) = scene_rig(config), scene_poses(config)  # (1, 2, 9, 3)
    cameras = {c.name: c for c in rig.cameras}

    def found(name, animals):
        seen = cameras[name].project(poses[0][animals]).astype(np.float32)
        return FramePredictions(0, seen, np.ones(seen.shape[:2]), np.ones(len(animals)), np.array(animals))

    triangulate = GroupTriangulator(rig, SYNTH_SKELETON)
    apart = triangulate(FrameGroup(0, 0, {"cam0": found("cam0", [0]), "cam1": found("cam1", [1])}))
    assert list(apart.track_ids) == [0] and np.isnan(apart.points).all()
    assert (apart.cameras_used == 0).all()
    joined = triangulate(
        FrameGroup(
            0, 0, {"cam0": found("cam0", [0]), "cam1": found("cam1", [1]), "cam2": found("cam2", [1, 0])}
        )
    )
    assert np.abs(joined.points - poses[0][[0]]).max() < 0.05  # cam0 and cam2's animal 0, not cam1's
    assert (joined.cameras_used == 2).all()
    unguarded = GroupTriangulator(rig, SYNTH_SKELETON, threshold_px=None)  # no threshold: paired as seen
    assert np.isfinite(
        unguarded(FrameGroup(0, 0, {"cam0": found("cam0", [0]), "cam1": found("cam1", [1])})).points
    ).all()


# -- live 3D end to end: camera-sim (a synthetic view per camera) -> live --calibration -> a client ----

LIVE_FRAMES = 20


@pytest.fixture(scope="module")
def rig_scene(tmp_path_factory):
    """One animal filmed by 3 cameras at the demo model's size (384x384 gray), 20 frames."""
    from posestream.multiview.synth_scene import SceneConfig, write_scene

    out = tmp_path_factory.mktemp("rig") / "scene"
    return write_scene(
        out, SceneConfig(cameras=3, animals=1, frames=LIVE_FRAMES, size=(384, 384), seed=5), False
    )


def _live_3d_run(scene, tmp_path, videos, **grouping):
    """camera-sim sends ``videos`` (camera k the k-th) losslessly to a live session with the scene's
    calibration; returns the session's summary and every message a client received (2D and 3D)."""
    import threading

    from test_live import options, serving, sim

    from posestream.engine.live.listen import listen
    from posestream.engine.live.sim import camera_sim
    from posestream.live import PoseSubscriber
    from posestream.multiview.live_recording import MessageRecording
    from posestream.multiview.live_sink import Live3DOptions

    opts = options(tmp_path, record=str(tmp_path / "rec.h5"))
    step = Live3DOptions(str(scene / "calibration.toml"), **grouping).step
    listened, done = {}, threading.Event()
    with serving(opts, steps=[step]) as (session, result), PoseSubscriber(opts.publish) as subscriber:
        recording = MessageRecording(tmp_path / "listened.3d.h5")  # listen -o's 3D file
        run = lambda: listened.update(summary=listen(opts.publish, quiet=True, stop=done, three_d=recording))  # noqa: E731
        client = threading.Thread(target=run, daemon=True)
        client.start()
        assert session.publisher.wait_for_client(30.0, clients=2), "the clients did not reach the engine"
        camera_sim([scene / v for v in videos], sim(opts))
        messages = []
        while (message := subscriber.recv(timeout=2.0 if messages else 60.0)) is not None:
            messages.append(message)
        session.stop()
        stats3d = subscriber.stats3d
        done.set()
        client.join(30)
    assert listened["summary"].groups == sum(
        1 for m in messages if hasattr(m, "group")
    )  # listen saw them all
    return result["summary"], messages, stats3d


def test_live_frames_of_each_moment_are_joined_in_3d_published_recorded_and_counted(rig_scene, tmp_path):
    import h5py
    import numpy as np

    from posestream.live import Pose3DMessage

    summary, messages, _ = _live_3d_run(
        rig_scene, tmp_path, ["cam0.mp4", "cam1.mp4", "cam2.mp4"], max_wait_ms=60_000.0
    )
    three_d = [m for m in messages if isinstance(m, Pose3DMessage)]
    assert len(messages) - len(three_d) == 3 * LIVE_FRAMES  # every 2D frame published
    figures = summary.steps["three_d"]
    # every frame grouped; every moment complete (lossless, and the wait is longer than any run)
    assert (figures["frames_arrived"], figures["frames_grouped"], figures["frames_late"]) == (60, 60, 0)
    assert (figures["groups_complete"], figures["groups_partial"], figures["groups_published"]) == (20, 0, 20)
    assert [m.group for m in three_d] == list(range(LIVE_FRAMES))
    for moment, message in enumerate(three_d):
        assert message.cameras.tolist() == [0, 1, 2] and message.counters.tolist() == [moment] * 3
        assert not message.partial and len(set(message.captures.tolist())) == 1
    assert figures["step_ms"]["p50"] > 0 and figures["latency_ms"]["p50"] > 0
    with h5py.File(tmp_path / "rec.3d.h5") as f:  # the recording: one row per group, the counters of each
        assert f["points3d"].shape[0] == LIVE_FRAMES and f["points3d"].shape[2:] == (9, 3)
        assert (f["camera_counters"][:] == np.arange(LIVE_FRAMES)[:, None]).all()
        recorded = f["points3d"][:]
    with h5py.File(tmp_path / "listened.3d.h5") as f:  # listen -o's: the same groups
        assert (f["camera_counters"][:] == np.arange(LIVE_FRAMES)[:, None]).all()
        np.testing.assert_allclose(f["points3d"][:], recorded, atol=1e-3)  # sent as float32
    with h5py.File(rig_scene / "truth3d.h5") as f:
        truth = f["points3d"][:, 0]  # (F, N, 3) mm
    distance = np.linalg.norm(recorded - truth[:, None], axis=-1)  # (F, T, N): each row against the animal
    nearest = np.where(np.isnan(distance), np.inf, distance).min(axis=1)  # (F, N)
    assert np.median(nearest) < 15.0  # mm, for an 80 mm animal: the demo model's 2D error, in 3D


def test_named_cameras_in_any_order_a_silent_one_and_an_uncalibrated_one(rig_scene, tmp_path):
    """Cameras 0, 1 and 2 send cam1's, cam0's and cam2's views; the rig names camera 0 cam1 and camera 1
    cam0 (its order, not the calibration's), and camera 2 by nothing. Then a rig waits for a camera that
    never sends."""
    import h5py
    import numpy as np

    from posestream.live import Pose3DMessage

    summary, messages, stats3d = _live_3d_run(
        rig_scene,
        tmp_path,
        ["cam1.mp4", "cam0.mp4", "cam2.mp4"],
        camera_names=("cam1", "cam0"),
        max_wait_ms=60_000.0,
    )
    figures = summary.steps["three_d"]
    assert figures["frames_uncalibrated"] == {"2": LIVE_FRAMES}
    assert (figures["frames_grouped"], figures["frames_late"]) == (2 * LIVE_FRAMES, 0)
    assert (figures["groups_complete"], figures["groups_partial"]) == (LIVE_FRAMES, 0)  # the two named only
    three_d = [m for m in messages if isinstance(m, Pose3DMessage)]
    assert len(three_d) == LIVE_FRAMES and stats3d["cameras"] == {"0": "cam1", "1": "cam0"}
    assert all(m.cameras.tolist() == [0, 1] and not m.partial for m in three_d)
    with h5py.File(tmp_path / "rec.3d.h5") as f:  # each camera's counters under its own name
        assert f["camera_names"][:].tolist() == [b"cam1", b"cam0"]
        assert (f["camera_counters"][:] == np.arange(LIVE_FRAMES)[:, None]).all()
        recorded = f["points3d"][:]
    with h5py.File(rig_scene / "truth3d.h5") as f:
        truth = f["points3d"][:, 0]
    distance = np.linalg.norm(recorded - truth[:, None], axis=-1)  # (F, T, N)
    solved = distance[
        np.isfinite(distance)
    ]  # two cameras solve fewer nodes; swapped names would solve nonsense
    assert solved.size > 50 and np.median(solved) < 15.0

    (tmp_path / "silent").mkdir()
    summary, messages, _ = _live_3d_run(
        rig_scene,
        tmp_path / "silent",
        ["cam0.mp4", "cam1.mp4"],
        camera_names=("cam0", "cam1", "cam2"),
        max_wait_ms=30.0,
    )
    figures = summary.steps["three_d"]
    assert figures["groups_partial"] == figures["groups_published"] and figures["groups_complete"] == 0
    assert figures["frames_grouped"] + figures["frames_late"] == 2 * LIVE_FRAMES
    assert all(m.partial and 2 not in m.cameras for m in messages if isinstance(m, Pose3DMessage))


def test_live_calibration_names_are_checked(rig_scene, tmp_path, capsys):
    from test_live import options

    from posestream.cli import main
    from posestream.engine.live.session import LiveSession
    from posestream.multiview.live_sink import Live3DOptions

    step = Live3DOptions(str(rig_scene / "calibration.toml"), ("cam0", "top")).step
    with pytest.raises(
        ConfigError, match=r"Calibration: \['cam0', 'cam1', 'cam2'\]; --camera-names: \['cam0', 'top'\]"
    ):
        LiveSession(["demo"], options(tmp_path), steps=[step])
    assert main(["live", "-m", "demo", "--camera", "ipc:///nowhere", "--group-wait-ms", "50"]) == 2
    assert "for a calibrated rig's 3D poses: give --calibration too" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--group-wait-ms 0 must both be > 0"):
        Live3DOptions("calibration.toml", max_wait_ms=0)


def test_a_3d_message_round_trips_and_a_short_one_is_refused():
    import numpy as np

    from posestream.live.pose3d import Pose3DHeader, parse_pose3d, pose3d_parts
    from posestream.live.protocol import ProtocolError

    header = Pose3DHeader(7, 2, 1, 3, 2, Pose3DHeader.PARTIAL, 100, 5, 200)
    points = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    parts = pose3d_parts(header, [0, 2], [11, 12], [100, 101], points, np.full((1, 3), 2), [4])
    message = parse_pose3d(parts)
    assert message.group == 7 and message.partial and message.counters.tolist() == [11, 12]
    assert message.header.reference == 2
    np.testing.assert_array_equal(message.points, points)
    assert message.latency_ms == (200 - 101) / 1e6
    with pytest.raises(
        ProtocolError, match="group 7 is 135 bytes, expected 139 for 2 cameras, 1 tracks, 3 nodes"
    ):
        parse_pose3d([parts[0], parts[1][:-4]])
