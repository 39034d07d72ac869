"""``posestream synth --cameras N``: one 3D scene of animals in a box, filmed by N virtual cameras.

The animals walk as ``posestream synth``'s do (engine/synth/motion.py), on the floor of a square arena
(``ARENA_MM`` wide, its middle at the world's origin, z up), each node at its own height above the floor
(``NODE_HEIGHT``, body lengths). The cameras stand on a ring around the arena and look at its middle, with a
little radial distortion. Written into OUT_DIR:

- ``calibration.toml``: the cameras (anipose's format), as ``--calibration`` names it;
- ``truth3d.h5``: the 3D poses (frames, animals, nodes, 3) in mm, the layout ``triangulate`` writes;
- per camera NAME: ``NAME.mp4`` (the animals drawn where the camera sees them), ``NAME.analysis.h5`` (their
  2D truth, every animal its own track, ``animal_K``) and, with ``jitter``, ``NAME.detections.h5`` (the
  truth with that many pixels of noise per coordinate, each camera's tracks named ``NAME_trackK`` in an
  order of its own: what each camera tracked on its own would give triangulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.progress import progress_bar
from posestream.engine.sinks.analysis_h5 import AnalysisH5Writer
from posestream.engine.synth.motion import SYNTH_SKELETON, PoseSimulator, SynthConfig
from posestream.engine.synth.render import FrameRenderer
from posestream.engine.synth.writer import h264_stream, open_video_output, yuv420p_frame
from posestream.engine.types import FramePredictions
from posestream.multiview.calibration_file import write_calibration
from posestream.multiview.camera import Camera, rodrigues_vector
from posestream.multiview.points3d_file import Points3D, write_points3d
from posestream.multiview.rig import Rig

ARENA_MM = 400.0
ARENA_PX = 400  # the 2D simulation's arena: 1 px = ARENA_MM / ARENA_PX mm
# height of each node above the floor, body lengths (SYNTH_SKELETON's order: nose .. tail_tip)
NODE_HEIGHT = np.array([0.12, 0.2, 0.3, 0.3, 0.22, 0.25, 0.15, 0.06, 0.02])
RING_MM, CAMERA_HEIGHT_MM = 650.0, 450.0  # cameras' distance from the arena's middle, and height
FOCAL = 1.2  # focal length, in image widths: the arena fills most of each view
DISTORTION = (-0.08, 0.02, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class SceneConfig:
    cameras: int = 4
    animals: int = 2
    frames: int = 300
    size: tuple[int, int] = (1280, 1024)  # each camera's (width, height), as sleap-anipose's rig
    seed: int = 0
    jitter: float = 0.0  # pixels of noise per coordinate in NAME.detections.h5 (0: none written)
    fps: float = 30.0
    video: bool = True  # False: the 2D and 3D truth only, no NAME.mp4 (fast, for triangulation alone)

    def __post_init__(self):
        if self.cameras < 2:
            raise ConfigError(f"--cameras {self.cameras}: a 3D scene needs at least 2 cameras")
        if self.jitter < 0:
            raise ConfigError(f"--jitter {self.jitter}: noise must be >= 0 pixels")


def scene_rig(config: SceneConfig) -> Rig:
    """The cameras on a ring around the arena, the first behind it (-y), all looking at its middle."""
    cameras = []
    for index in range(config.cameras):
        angle = -np.pi / 2 + 2 * np.pi * index / config.cameras
        position = np.array([RING_MM * np.cos(angle), RING_MM * np.sin(angle), CAMERA_HEIGHT_MM])
        forward = -position / np.linalg.norm(position)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        rotation = np.stack([right, np.cross(forward, right), forward])  # rows: camera x, y, z in the world
        width, height = config.size
        focal = FOCAL * width
        matrix = [[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]]
        cameras.append(
            Camera(
                f"cam{index}",
                config.size,
                matrix,
                DISTORTION,
                rodrigues_vector(rotation),
                -rotation @ position,
            )
        )
    return Rig(cameras)


def scene_poses(config: SceneConfig) -> tuple[np.ndarray, float]:
    """The animals' 3D poses (F, A, N, 3) in mm, and their body length in mm."""
    walk = SynthConfig(
        frames=config.frames, width=ARENA_PX, height=ARENA_PX, animals=config.animals, seed=config.seed
    )
    mm = ARENA_MM / ARENA_PX
    body = walk.body_length * mm
    floor = np.stack(list(PoseSimulator(walk)))[: config.frames] * mm - ARENA_MM / 2  # (F, A, N, 2)
    heights = np.broadcast_to(NODE_HEIGHT * body, floor.shape[:-1])[..., None]
    return np.concatenate([floor, heights], axis=-1), body


def write_scene(
    out_dir: str | Path, config: SceneConfig, progress: bool = True, calibration: str | Path | None = None
) -> Path:
    """Write the scene's calibration (``calibration``, default OUT_DIR/calibration.toml), 3D truth and each
    camera's video and 2D files into ``out_dir``."""
    out = Path(out_dir)
    if out.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov"):
        raise ConfigError(f"{out}: with --cameras, OUT is a folder for the scene's files, not a video")
    out.mkdir(parents=True, exist_ok=True)
    rig = scene_rig(config)
    poses, body = scene_poses(config)
    write_calibration(rig, calibration or out / "calibration.toml")
    names = [f"animal_{a}" for a in range(config.animals)]
    write_points3d(
        out / "truth3d.h5",
        Points3D(
            points=poses,
            reprojection_error=np.zeros((*poses.shape[:3], len(rig.cameras)), np.float32),
            cameras_used=np.full(poses.shape[:3], len(rig.cameras)),
            node_names=list(SYNTH_SKELETON.nodes),
            edges=list(SYNTH_SKELETON.edges),
            track_names=names,
            camera_names=rig.names,
        ),
    )
    rng = np.random.default_rng([config.seed, 7])
    for camera in rig.cameras:
        seen = camera.project(poses)  # (F, A, N, 2)
        _write_view(out / f"{camera.name}.analysis.h5", seen, names, out / f"{camera.name}.mp4")
        if config.jitter:
            order = rng.permutation(config.animals)
            noisy = seen[:, order] + rng.normal(0.0, config.jitter, seen.shape)
            own = [f"{camera.name}_track{k}" for k in range(config.animals)]
            _write_view(out / f"{camera.name}.detections.h5", noisy, own, out / f"{camera.name}.mp4")
        if config.video:
            _write_video(out / f"{camera.name}.mp4", seen, camera, body, config, progress)
    return out


def _write_view(path: Path, pixels: np.ndarray, names: list[str], video: Path) -> None:
    """One camera's poses (F, A, N, 2) as an analysis HDF5, each animal its own named track."""
    n_animals, n_nodes = pixels.shape[1:3]
    with AnalysisH5Writer(
        path, SYNTH_SKELETON, video_path=str(video), tracked=True, track_names=names
    ) as out:
        for frame_idx, frame in enumerate(pixels):
            out.write(
                FramePredictions(
                    frame_idx=frame_idx,
                    points=frame,
                    point_scores=np.ones((n_animals, n_nodes), np.float32),
                    instance_scores=np.ones(n_animals, np.float32),
                    track_ids=np.arange(n_animals, dtype=np.int32),
                )
            )


def _write_video(
    path: Path, pixels: np.ndarray, camera: Camera, body_mm: float, config: SceneConfig, progress
):
    """The animals drawn where ``camera`` sees them (the synth renderer, at the scene's mean depth)."""
    width, height = config.size
    depth = np.linalg.norm(camera.center)
    renderer = FrameRenderer(
        height, width, False, body_mm * camera.matrix[0, 0] / depth, config.animals, config.seed
    )
    video = SynthConfig(frames=config.frames, width=width, height=height, fps=config.fps)
    with open_video_output(path) as container:
        stream = h264_stream(container, video, crf=18)
        with progress_bar(config.frames, f"synth {path.name}", enabled=progress) as advance:
            for frame_idx, frame in enumerate(pixels):
                image = yuv420p_frame(renderer.render(frame.astype(np.float32), frame_idx))
                image.pts, image.time_base = frame_idx, 1 / stream.average_rate
                container.mux(stream.encode(image))
                advance()
        container.mux(stream.encode(None))
