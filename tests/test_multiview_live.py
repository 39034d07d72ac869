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
    with pytest.raises(ConfigError, match="must both be > 0"):
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
