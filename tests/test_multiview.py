"""Several calibrated cameras: the camera model, anipose's calibration.toml, triangulation and its command."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from posestream.cli import main as cli_main
from posestream.core.errors import ConfigError
from posestream.engine.sinks.analysis_h5 import AnalysisH5Writer
from posestream.engine.types import FramePredictions, Skeleton
from posestream.multiview.calibration_file import read_calibration, write_calibration
from posestream.multiview.camera import Camera, rodrigues, rodrigues_vector
from posestream.multiview.points3d_file import read_points3d
from posestream.multiview.rig import Rig
from posestream.multiview.triangulate import triangulate

SESSION = Path(
    os.environ.get(
        "POSESTREAM_ANIPOSE_SESSION",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "sleap-anipose" / "minimal_session",
    )
)


def look_at(
    name: str, position, target=(0.0, 0.0, 0.0), distortions=(-0.2, 0.05, 0.001, -0.001, 0.0)
) -> Camera:
    """A 1280x1024 camera at ``position`` (mm) looking at ``target``."""
    forward = np.subtract(target, position) / np.linalg.norm(np.subtract(target, position))
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-9 else np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    matrix = [[900.0, 0.0, 640.0], [0.0, 900.0, 512.0], [0.0, 0.0, 1.0]]
    return Camera(
        name, (1280, 1024), matrix, distortions, rodrigues_vector(rotation), -rotation @ np.asarray(position)
    )


@pytest.fixture
def rig() -> Rig:
    return Rig(
        [
            look_at("back", (0.0, -400.0, 150.0)),
            look_at("side", (400.0, 0.0, 150.0)),
            look_at("front", (0.0, 400.0, 150.0)),
            look_at("top", (10.0, 0.0, 450.0)),
        ]
    )


def scene(n: int = 200, seed: int = 0) -> np.ndarray:
    """Points (n, 3) in a 100 mm box around the origin."""
    return np.random.default_rng(seed).uniform(-50.0, 50.0, (n, 3))


def test_rodrigues_round_trip_including_half_turns():
    for vector in (
        [0.3, -1.2, 0.5],
        [0.0, 0.0, 0.0],
        [np.pi, 0.0, 0.0],
        [0.0, np.pi / np.sqrt(2), np.pi / np.sqrt(2)],
    ):
        matrix = rodrigues(vector)
        assert np.allclose(matrix @ matrix.T, np.eye(3))
        assert np.allclose(rodrigues(rodrigues_vector(matrix)), matrix)


def test_undistort_inverts_projection_with_distortion(rig):
    points = scene()
    for camera in rig.cameras:
        seen = points @ rodrigues(camera.rotation).T + camera.translation
        ideal = seen[:, :2] / seen[:, 2:]
        assert np.abs(camera.undistort(camera.project(points)) - ideal).max() < 1e-9


def test_projection_matches_opencv(rig):
    cv2 = pytest.importorskip("cv2", reason="OpenCV (posestream[eval] brings it) checks the camera model")
    points = scene()
    for camera in rig.cameras:
        expected = cv2.projectPoints(
            points, camera.rotation, camera.translation, camera.matrix, camera.distortions
        )
        assert np.abs(camera.project(points) - expected[0][:, 0]).max() < 1e-9


def test_calibration_round_trips_in_anipose_fields(rig, tmp_path):
    rig.metadata = {"error": 0.25, "adjusted": True}
    path = write_calibration(rig, tmp_path / "calibration.toml")
    text = path.read_text()
    for field in (
        "[cam_0]",
        "name = ",
        "size = ",
        "matrix = ",
        "distortions = ",
        "rotation = ",
        "translation = ",
    ):
        assert field in text
    back = read_calibration(path)
    assert back.names == rig.names and back.metadata == rig.metadata
    for a, b in zip(back.cameras, rig.cameras):
        assert a.size == b.size
        for name in ("matrix", "distortions", "rotation", "translation"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_reads_sleap_anipose_calibration():
    path = SESSION / "calibration.toml"
    if not path.exists():
        pytest.skip(f"{path} not found (set POSESTREAM_ANIPOSE_SESSION to sleap-anipose's minimal_session)")
    rig = read_calibration(path)
    assert rig.names == ["back", "mid", "side", "top"]
    assert rig.cameras[0].size == (1280, 1024) and rig.cameras[0].matrix[0, 0] == pytest.approx(
        769.886, abs=1e-3
    )


def test_malformed_calibration_names_the_entry(tmp_path):
    path = tmp_path / "calibration.toml"
    path.write_text('[cam_0]\nname = "a"\nsize = [10, 10]\n')
    with pytest.raises(ConfigError, match=r"\[cam_0\] lacks \['matrix'"):
        read_calibration(path)


def test_mismatched_camera_names_list_both_sides(rig):
    with pytest.raises(ConfigError) as error:
        rig.select(["back", "left"], source="the NAME=FILE inputs")
    message = str(error.value)
    assert (
        "['left']" in message
        and "['back', 'side', 'front', 'top']" in message
        and "['back', 'left']" in message
    )


def test_triangulation_recovers_exact_points(rig):
    points = scene()
    pixels = np.stack([c.project(points) for c in rig.cameras])  # (C, P, 2)
    result = triangulate(rig, pixels)
    assert np.abs(result.points - points).max() < 1e-6
    assert (result.cameras_used == 4).all() and np.nanmax(result.reprojection_error) < 1e-6


def test_noise_is_averaged_and_an_outlier_camera_left_out(rig):
    points = scene(500, seed=1)
    rng = np.random.default_rng(2)
    pixels = np.stack([c.project(points) for c in rig.cameras]) + rng.normal(0, 1.5, (4, 500, 2))
    clean = triangulate(rig, pixels)
    # 1.5 px is 0.67 mm at 400 mm from a 900 px focal length; four views do no worse than one
    assert np.median(np.linalg.norm(clean.points - points, axis=-1)) < 0.67
    pixels[2, :100] += 60.0  # camera "front" far off on the first 100 points
    result = triangulate(rig, pixels, threshold_px=20.0)
    assert (result.cameras_used[:100] == 3).all() and (result.cameras_used[100:] == 4).all()
    assert (result.reprojection_error[2, :100] > 40).all()
    kept = triangulate(rig, pixels, threshold_px=None)
    assert (kept.cameras_used == 4).all()
    assert np.median(np.linalg.norm(kept.points[:100] - points[:100], axis=-1)) > 2 * np.median(
        np.linalg.norm(result.points[:100] - points[:100], axis=-1)
    )


def test_a_point_seen_by_one_camera_is_nan_and_counted(rig):
    points = scene(10)
    pixels = np.stack([c.project(points) for c in rig.cameras])
    pixels[1:, 3] = np.nan  # point 3: back only
    pixels[:, 7] = np.nan  # point 7: nobody
    scores = np.ones((4, 10))
    scores[2:, 5] = 0.0  # point 5: two cameras by score
    result = triangulate(rig, pixels, scores)
    assert np.isnan(result.points[3]).all() and np.isnan(result.points[7]).all()
    assert result.cameras_used[3] == 0 and result.cameras_seen[3] == 1 and result.unsolved == 1
    assert result.cameras_used[5] == 2 and np.abs(result.points[5] - points[5]).max() < 1e-6


def write_view(path: Path, camera: Camera, poses: np.ndarray, skeleton: Skeleton, names=("mouse",)) -> Path:
    """An analysis HDF5 of ``poses`` (F, T, N, 3) as ``camera`` sees them, one track per animal."""
    with AnalysisH5Writer(path, skeleton, tracked=True, track_names=names) as writer:
        for frame_idx, frame in enumerate(poses):
            pixels = camera.project(frame).astype(np.float32)  # (T, N, 2)
            seen = np.isfinite(pixels[:, :, 0]).any(axis=1)
            writer.write(
                FramePredictions(
                    frame_idx=frame_idx,
                    points=pixels[seen],
                    point_scores=np.ones(pixels[seen].shape[:2], np.float32),
                    instance_scores=np.ones(int(seen.sum()), np.float32),
                    track_ids=np.flatnonzero(seen).astype(np.int32),
                )
            )
    return path


def test_triangulate_command_writes_sleap_anipose_layout(rig, tmp_path, capsys):
    skeleton = Skeleton.from_names(["nose", "head", "tail"], [("nose", "head"), ("head", "tail")])
    poses = scene(20 * 3).reshape(20, 1, 3, 3)
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    inputs = [
        f"{c.name}={write_view(tmp_path / f'{c.name}.h5', c, poses, skeleton)}" for c in rig.cameras[:3]
    ]
    hidden = poses.copy()
    hidden[5] = np.nan  # frame 5: no animal in camera "front"
    inputs[2] = f"front={write_view(tmp_path / 'front.h5', rig.cameras[2], hidden, skeleton)}"
    out = tmp_path / "points3d.h5"
    code = cli_main(["triangulate", "--calibration", str(calibration), "-o", str(out), *inputs])
    assert code == 0, capsys.readouterr().err
    assert "20 frames x 1 tracks: 60 points" in capsys.readouterr().out
    data = read_points3d(out)
    assert data.points.shape == (20, 1, 3, 3) and data.camera_names == ["back", "side", "front"]
    assert np.abs(data.points - poses).max() < 1e-3  # the views store float32 pixels
    assert (data.cameras_used[5] == 2).all() and (np.delete(data.cameras_used, 5, axis=0) == 3).all()
    assert data.node_names == ["nose", "head", "tail"] and data.track_names == ["mouse"]
    with h5py.File(out) as f:  # sleap-anipose's name for the same data
        assert np.array_equal(f["tracks"][:], f["points3d"][:], equal_nan=True)


def test_triangulate_command_refuses_unknown_camera_and_empty_view(rig, tmp_path, capsys):
    skeleton = Skeleton.from_names(["a", "b"])
    poses = scene(5 * 2).reshape(5, 1, 2, 3)
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    back = write_view(tmp_path / "back.h5", rig.cameras[0], poses, skeleton)
    side = write_view(tmp_path / "side.h5", rig.cameras[1], np.full_like(poses, np.nan), skeleton)
    args = ["triangulate", "--calibration", str(calibration), "-o", str(tmp_path / "out.h5")]
    assert cli_main([*args, f"back={back}", f"left={back}"]) == 2
    assert "cameras ['left'] that the calibration does not have" in capsys.readouterr().err
    assert cli_main([*args, f"back={back}", f"side={side}"]) == 2
    assert "camera side" in capsys.readouterr().err and not (tmp_path / "out.h5").exists()
    assert cli_main([*args, f"back{back}", f"side={side}"]) == 2
    assert "NAME=FILE" in capsys.readouterr().err


BOARD_TOML = (
    "board_x = 6\nboard_y = 5\nsquare_length = 30.0\nmarker_length = 22.5\nmarker_bits = 4\ndict_size = 50\n"
)


def board_poses(n: int, board_size=(180.0, 150.0), seed: int = 3) -> list[np.ndarray]:
    """Board poses (4, 4) in the world: printed face up (its z axis down), tilted up to ~35 degrees, its
    middle within 40 mm of the origin."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        pose = np.eye(4)
        pose[:3, :3] = rodrigues(rng.uniform(-0.6, 0.6, 3)) @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = rng.uniform(-40, 40, 3) - pose[:3, :3] @ [board_size[0] / 2, board_size[1] / 2, 0.0]
        poses.append(pose)
    return poses


def test_calibration_recovers_a_rig_from_board_corners(rig):
    from posestream.multiview.board import Board
    from posestream.multiview.calibrate import calibrate
    from posestream.multiview.calibrate_command import board_spacing

    pytest.importorskip("cv2", reason="calibration needs posestream[calibration] (OpenCV)")
    board = Board(6, 5, 30.0, 22.5, 4, 50)
    truth = Rig(rig.cameras[:3])  # back, side, front: each sees the board's front face
    world = np.stack([board.object_points() @ p[:3, :3].T + p[:3, 3] for p in board_poses(12)])  # (F, K, 3)
    rng = np.random.default_rng(4)
    corners = np.stack([c.project(world) for c in truth.cameras]) + rng.normal(
        0, 0.2, (3, *world.shape[:2], 2)
    )
    corners[1, :3] = np.nan  # side misses the first three frames
    found, report = calibrate(corners, board, truth.names, [c.size for c in truth.cameras], radial_terms=2)
    for ours, true in zip(found.cameras, truth.cameras):
        assert ours.matrix[0, 0] == pytest.approx(true.matrix[0, 0], rel=0.02)
    # the world is camera 0's frame: compare the cameras' positions relative to it
    true_positions = [
        rodrigues(truth.cameras[0].rotation) @ c.center + truth.cameras[0].translation for c in truth.cameras
    ]
    for ours, position in zip(found.cameras, true_positions):
        assert np.linalg.norm(ours.center - position) < 5.0  # mm, cameras ~400 mm away
    assert all(m < 0.5 for m in report.median_px().values()) and report.frames_used == [12, 9, 12]
    assert board_spacing(found, corners, board)["median_abs_error"] < 0.1


def test_calibration_refuses_a_camera_that_never_sees_the_board(rig):
    from posestream.multiview.board import Board
    from posestream.multiview.calibrate import calibrate

    pytest.importorskip("cv2", reason="calibration needs posestream[calibration] (OpenCV)")
    board = Board(6, 5, 30.0, 22.5, 4, 50)
    world = np.stack([board.object_points() @ p[:3, :3].T + p[:3, 3] for p in board_poses(5)])
    corners = np.stack([c.project(world) for c in rig.cameras[:2]])
    corners[1] = np.nan
    with pytest.raises(ConfigError, match="camera side: the board is found .* in 0 frames"):
        calibrate(corners, board, ["back", "side"], [(1280, 1024)] * 2)


def test_calibrate_command_detects_a_charuco_board_in_images(rig, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2", reason="calibration needs posestream[calibration] (OpenCV)")
    (tmp_path / "board.toml").write_text(BOARD_TOML)
    aruco = cv2.aruco
    charuco = aruco.CharucoBoard((6, 5), 30.0, 22.5, aruco.getPredefinedDictionary(aruco.DICT_4X4_50))
    pixels_per_mm = 4.0
    picture = charuco.generateImage((int(180 * pixels_per_mm), int(150 * pixels_per_mm)), marginSize=0)
    # the picture's pixel (u, v) is the board's point (u, v) / pixels_per_mm, z = 0
    to_board = np.diag([1 / pixels_per_mm, 1 / pixels_per_mm, 1.0])
    still = (0.0, 0.0, 0.0, 0.0, 0.0)
    cameras = [
        look_at("back", (0, -300, 350), distortions=still),
        look_at("side", (300, 0, 350), distortions=still),
    ]
    cameras.append(look_at("top", (10, 0, 450), distortions=still))
    for camera in cameras:
        folder = tmp_path / "session" / camera.name / "calibration_images"
        folder.mkdir(parents=True)
        for index, pose in enumerate(board_poses(8)):
            homography = camera.matrix @ camera.extrinsics @ pose[:, [0, 1, 3]] @ to_board  # picture -> image
            image = cv2.warpPerspective(picture, homography, camera.size, borderValue=255)
            cv2.imwrite(str(folder / f"{camera.name}-2024-{index}.png"), image)
    out = tmp_path / "calibration.toml"
    args = ["calibrate", str(tmp_path / "session"), "--board", str(tmp_path / "board.toml"), "-o", str(out)]
    assert cli_main([*args, "--radial-terms", "1", "--quiet"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "back: 8 frames" in printed and out.with_suffix(".report.png").exists()
    found = read_calibration(out)
    assert found.names == ["back", "side", "top"]
    for camera in found.cameras:
        assert camera.matrix[0, 0] == pytest.approx(900.0, rel=0.02)


def test_parallel_chunks_give_the_same_points(rig, monkeypatch):
    import posestream.multiview.triangulate as module

    points = scene(100, seed=5)
    pixels = np.stack([c.project(points) for c in rig.cameras]) + np.random.default_rng(6).normal(
        0, 2, (4, 100, 2)
    )
    pixels[3, 10:20] += 50.0  # outliers, left out chunk by chunk
    whole = triangulate(rig, pixels)
    monkeypatch.setattr(module, "CHUNK", 7)
    parallel = triangulate(rig, pixels, threads=3)
    assert np.array_equal(whole.points, parallel.points) and np.array_equal(whole.used, parallel.used)
    assert np.array_equal(whole.reprojection_error, parallel.reprojection_error)


def test_synthetic_scene_triangulates_back_to_its_truth(tmp_path, capsys):
    scene = tmp_path / "scene"
    film(
        scene,
        "--cameras",
        "3",
        "--num-frames",
        "12",
        "--camera-size",
        "320x256",
        "--jitter",
        "1.0",
        "--seed",
        "3",
    )
    names = ["cam0", "cam1", "cam2"]
    for name in names:
        assert (scene / f"{name}.mp4").stat().st_size > 0 and (scene / f"{name}.detections.h5").exists()
    truth = read_points3d(scene / "truth3d.h5")
    assert truth.points.shape == (12, 2, 9, 3) and truth.camera_names == names
    inputs = [f"{n}={scene / f'{n}.analysis.h5'}" for n in names]
    out = tmp_path / "points3d.h5"
    assert (
        cli_main(["triangulate", "--calibration", str(scene / "calibration.toml"), "-o", str(out), *inputs])
        == 0
    )
    exact = read_points3d(out).points  # from the exact 2D truth (float32 pixels)
    assert np.abs(exact - truth.points).max() < 0.05
    noisy = [f"{n}={scene / f'{n}.detections.h5'}" for n in names]
    assert (
        cli_main(["triangulate", "--calibration", str(scene / "calibration.toml"), "-o", str(out), *noisy])
        == 0
    )
    found = read_points3d(out)  # the detections name tracks per camera, in an order of its own: matched
    assert found.track_names == ["cam0_track0", "cam0_track1"]
    errors = [np.linalg.norm(found.points[:, order] - truth.points, axis=-1) for order in ([0, 1], [1, 0])]
    error = min(errors, key=np.median)  # every frame in the one order: no identity crossed between views
    assert 0.05 < np.median(error) and np.percentile(error, 99) < 8.0  # mm: 1 px noise, ~1 mm a pixel


def test_synthetic_scene_refuses_a_video_name_and_one_camera(tmp_path, capsys):
    assert cli_main(["synth", str(tmp_path / "scene.mp4"), "--cameras", "3", "--quiet"]) == 2
    assert "OUT is a folder" in capsys.readouterr().err
    assert cli_main(["synth", str(tmp_path / "scene"), "--cameras", "1", "--quiet"]) == 2
    assert "at least 2 cameras" in capsys.readouterr().err
    film(tmp_path / "truth", "--cameras", "2", "--num-frames", "3", "--no-video")
    assert not list((tmp_path / "truth").glob("*.mp4")) and (tmp_path / "truth" / "cam1.analysis.h5").exists()


def test_views_tracked_apart_are_matched_across_cameras(tmp_path, capsys):
    from posestream.multiview.synth_scene import SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=3, animals=3, frames=40, size=(320, 256), seed=4)
    rig, (poses, _) = scene_rig(config), scene_poses(config)  # (F, 3, 9, 3)
    skeleton = Skeleton.from_names(["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"])
    orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0]]  # each camera lists the animals in its own order
    inputs = []
    for camera, order in zip(rig.cameras, orders):
        names = [f"{camera.name}_track{k}" for k in range(3)]
        view = write_view(tmp_path / f"{camera.name}.h5", camera, poses[:, order], skeleton, names)
        inputs.append(f"{camera.name}={view}")
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    out = tmp_path / "points3d.h5"
    assert cli_main(["triangulate", "--calibration", str(calibration), "-o", str(out), *inputs]) == 0
    assert "tracks matched across views by geometry" in capsys.readouterr().out
    data = read_points3d(out)
    assert data.track_names == ["cam0_track0", "cam0_track1", "cam0_track2"]
    assert np.abs(data.points - poses).max() < 0.1  # every 3D track is one animal, in the first view's order


def test_smoothing_is_a_stated_step_that_keeps_gaps(rig, tmp_path, capsys):
    from posestream.multiview.smoothing import median_smooth

    track = np.stack([np.arange(9.0)] * 3, axis=-1)[:, None]  # (9, 1, 3): a straight walk
    track[4] += 30.0  # one outlier frame
    track[7] = np.nan  # a gap
    smoothed = median_smooth(track, 3)
    assert np.allclose(smoothed[4], 5.0) and np.isnan(smoothed[7]).all() and np.allclose(smoothed[1], 1.0)
    skeleton = Skeleton.from_names(["a", "b"])
    poses = scene(10 * 2).reshape(10, 1, 2, 3)
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    inputs = [
        f"{c.name}={write_view(tmp_path / f'{c.name}.h5', c, poses, skeleton)}" for c in rig.cameras[:2]
    ]
    out = tmp_path / "points3d.h5"
    args = ["triangulate", "--calibration", str(calibration), "-o", str(out), *inputs]
    assert cli_main([*args, "--smooth", "4"]) == 2 and "odd number of frames" in capsys.readouterr().err
    assert (
        cli_main([*args, "--smooth", "5"]) == 0
        and "smoothed: median over 5 frames" in capsys.readouterr().out
    )
    assert read_points3d(out).smoothing == "median over 5 frames"
    assert cli_main(args) == 0 and read_points3d(out).smoothing == ""


def test_render_draws_3d_poses_where_a_camera_sees_them_and_plot_draws_paths(tmp_path, capsys):
    from posestream.multiview.reprojection import ProjectedPoses

    pytest.importorskip("matplotlib", reason="the 3D picture needs posestream[calibration]")
    scene = tmp_path / "scene"
    film(scene, "--cameras", "2", "--num-frames", "6", "--camera-size", "320x256")
    inputs = [f"cam{c}={scene / f'cam{c}.analysis.h5'}" for c in range(2)]
    points = tmp_path / "points3d.h5"
    calibration = str(scene / "calibration.toml")
    picture = tmp_path / "paths.png"
    assert (
        cli_main(
            ["triangulate", "--calibration", calibration, "-o", str(points), "--plot", str(picture), *inputs]
        )
        == 0
    )
    assert picture.stat().st_size > 10_000
    projected = ProjectedPoses(points, calibration, "cam1")
    truth = read_view_points(scene / "cam1.analysis.h5")
    assert np.abs(np.stack([f.points for f in projected.iter_frames()]) - truth).max() < 0.05
    overlay = tmp_path / "overlay.mp4"
    args = ["render", str(scene / "cam1.mp4"), str(points), "-o", str(overlay), "--quiet"]
    assert cli_main([*args, "--calibration", calibration, "--view", "cam1"]) == 0
    assert "6 frames drawn" in capsys.readouterr().out and overlay.stat().st_size > 0
    assert cli_main([*args, "--view", "cam1"]) == 2 and "--calibration and --view" in capsys.readouterr().err


def film(scene: Path, *args: str) -> None:
    """``posestream synth SCENE --cameras ...`` with ``args``: a multi-camera scene and its files."""
    assert cli_main(["synth", str(scene), *args, "--quiet"]) == 0


def read_view_points(path: Path) -> np.ndarray:
    from posestream.multiview.views import read_view

    return read_view("camera", path).points  # (F, T, N, 2)


def test_batch_outputs_are_triangulated_session_by_session(tmp_path):
    from posestream.multiview.sessions import triangulate_sessions
    from posestream.multiview.synth_scene import SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=3, animals=2, frames=10, size=(320, 256), seed=2)
    rig, (poses, _) = scene_rig(config), scene_poses(config)
    skeleton = Skeleton.from_names([f"n{k}" for k in range(9)])
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    out = tmp_path / "out"
    for session, cameras in (("day1", rig.cameras), ("day2", rig.cameras[:1]), ("day3", rig.cameras[:2])):
        for camera in cameras:
            folder = out / session / camera.name
            folder.mkdir(parents=True)
            write_view(folder / "video.mp4.predictions.h5", camera, poses, skeleton, ["a", "b"])
    (out / "day3" / "cam1" / "video.mp4.predictions.h5").rename(out / "day3" / "cam1" / "v.predictions.h5")
    write_view(out / "day3" / "cam1" / "w.mp4.predictions.h5", rig.cameras[1], poses, skeleton, ["a", "b"])
    results = {r.session.name: r for r in triangulate_sessions(out, calibration)}
    assert results["day1"].status == "done" and results["day1"].cameras == ["cam0", "cam1", "cam2"]
    assert np.abs(read_points3d(out / "day1" / "points3d.h5").points - poses).max() < 0.05
    assert results["day2"].status == "failed" and "needs 2 cameras" in results["day2"].reason
    assert results["day3"].status == "failed" and "more than one video" in results["day3"].reason
    again = {r.session.name: r.status for r in triangulate_sessions(out, calibration)}
    assert again["day1"] == "up to date"


def test_untracked_views_are_paired_frame_by_frame(tmp_path):
    from posestream.multiview.matching import match_views
    from posestream.multiview.synth_scene import SceneConfig, scene_poses, scene_rig
    from posestream.multiview.views import View, join_views

    config = SceneConfig(cameras=2, animals=2, frames=20, size=(320, 256), seed=5)
    rig, (poses, _) = scene_rig(config), scene_poses(config)
    skeleton = Skeleton.from_names([f"n{k}" for k in range(9)])
    seen = [c.project(poses) for c in rig.cameras]  # (F, 2, 9, 2) each
    shuffled = seen[1].copy()
    swap = np.arange(20) % 3 == 0  # every third frame lists the animals the other way round
    shuffled[swap] = shuffled[swap][:, ::-1]
    scores = np.ones(poses.shape[:3])
    views = [
        View("cam0", tmp_path, seen[0], scores, ["a", "b"], skeleton, tracked=True),
        View("cam1", tmp_path, shuffled, scores, ["track_0", "track_1"], skeleton, tracked=False),
    ]
    joined = join_views(match_views(rig, views))
    assert np.allclose(joined.pixels[1], seen[1], equal_nan=True) and joined.track_names == ["a", "b"]


def test_offline_matching_leaves_apart_two_cameras_that_each_saw_a_different_animal(tmp_path):
    """Frames where each camera saw only one animal, and not the same one: the pair reprojects far apart and
    stays apart (tracked views: no vote; untracked: no pairing), as the live path's gate does."""
    from posestream.multiview.matching import match_views
    from posestream.multiview.synth_scene import SceneConfig, scene_poses, scene_rig
    from posestream.multiview.views import View

    config = SceneConfig(cameras=2, animals=2, frames=12, size=(320, 256), seed=5)
    rig, (poses, _) = scene_rig(config), scene_poses(config)
    skeleton = Skeleton.from_names([f"n{k}" for k in range(9)])
    seen = [c.project(poses) for c in rig.cameras]  # (F, 2, 9, 2) each
    seen[0][:, 1], seen[1][:, 0] = np.nan, np.nan  # cam0 saw animal a only, cam1 animal b only
    scores = np.ones(poses.shape[:3])
    reference = View("cam0", tmp_path, seen[0], scores, ["a", "b"], skeleton, tracked=True)
    for tracked in (True, False):
        other = View("cam1", tmp_path, seen[1], scores, ["x", "y"], skeleton, tracked=tracked)
        matched = match_views(rig, [reference, other], reference=0)[1]
        assert np.isnan(matched.points).all(), f"tracked={tracked}: two animals joined into one"
        unguarded = match_views(rig, [reference, other], reference=0, threshold_px=None)[1]
        assert np.isfinite(unguarded.points[:, 0]).any()  # without the gate, b's poses land in a's slot


def test_batch_with_calibration_writes_each_sessions_3d_file(tmp_path, capsys):
    scene = tmp_path / "scene"
    film(scene, "--cameras", "2", "--camera-size", "384x384", "--num-frames", "6")
    for camera in ("cam0", "cam1"):  # a session: one folder per camera
        (tmp_path / "day1" / camera).mkdir(parents=True)
        (scene / f"{camera}.mp4").rename(tmp_path / "day1" / camera / f"{camera}.mp4")
    args = [
        "batch",
        str(tmp_path / "day1"),
        "-m",
        "demo",
        "-o",
        str(tmp_path / "out"),
        "--jobs",
        "1",
        "--quiet",
    ]
    args += ["--calibration", str(scene / "calibration.toml")]
    assert cli_main(args) == 0, capsys.readouterr()
    assert "3D done" in capsys.readouterr().out
    data = read_points3d(tmp_path / "out" / "points3d.h5")
    assert data.points.shape[0] == 6 and data.camera_names == ["cam0", "cam1"]
    assert cli_main(args) == 0 and "3D up to date" in capsys.readouterr().out


def test_views_whose_trackers_reuse_the_same_names_are_still_matched(tmp_path, capsys):
    from posestream.multiview.synth_scene import SceneConfig, scene_poses, scene_rig

    config = SceneConfig(cameras=2, animals=2, frames=15, size=(320, 256), seed=6)
    rig, (poses, _) = scene_rig(config), scene_poses(config)
    skeleton = Skeleton.from_names([f"n{k}" for k in range(9)])
    inputs = []
    for camera, order in zip(rig.cameras, ([0, 1], [1, 0])):  # track_0 is another animal in each camera
        view = write_view(
            tmp_path / f"{camera.name}.h5", camera, poses[:, order], skeleton, ["track_0", "track_1"]
        )
        inputs.append(f"{camera.name}={view}")
    calibration = write_calibration(rig, tmp_path / "calibration.toml")
    out = tmp_path / "points3d.h5"
    assert cli_main(["triangulate", "--calibration", str(calibration), "-o", str(out), *inputs]) == 0
    assert "matched across views by geometry" in capsys.readouterr().out
    assert np.abs(read_points3d(out).points - poses).max() < 0.1


def test_a_3d_file_grows_tracks_that_are_empty_before_they_come_and_stays_small(tmp_path):
    import h5py

    from posestream.multiview.points3d_file import Points3DWriter, read_points3d

    path = tmp_path / "grown.h5"
    with Points3DWriter(path, ["a", "b"], [(0, 1)], ["c0", "c1"]) as out:
        for tracks in (1, 2, 1):  # a second track comes, then goes
            points = np.ones((400, tracks, 2, 3))
            out.append(
                points, np.ones((400, tracks, 2, 2)), np.full((400, tracks, 2), 2), ["t0", "t1"][:tracks]
            )
    data = read_points3d(path)
    assert data.points.shape == (1200, 2, 2, 3) and data.track_names == ["t0", "t1"]
    assert np.isnan(data.points[:400, 1]).all() and (data.cameras_used[:400, 1] == 0).all()  # before it came
    assert np.isnan(data.points[800:, 1]).all() and (data.points[400:800] == 1).all()
    assert np.isnan(data.reprojection_error[:400, 1]).all()
    with h5py.File(path) as f:
        assert f["tracks"].shape == f["points3d"].shape  # sleap-anipose's name
    raw = data.points.nbytes + data.reprojection_error.nbytes + data.cameras_used.nbytes
    assert path.stat().st_size < 2 * raw  # chunks follow the data (h5py's own guess made it 70 times larger)
