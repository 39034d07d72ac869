"""A rig's calibration from a board seen by its cameras: each camera's intrinsics, then every camera's pose
and every board pose jointly, by bundle adjustment.

1. Intrinsics per camera (OpenCV's ``calibrateCamera`` on the frames where it sees enough corners), in
   anipose's model: one focal length, the principal point at the image centre, radial distortion k1 (and
   k2 with ``radial_terms=2``), no tangential terms.
2. First guesses of each camera's pose relative to the first (from board poses seen by both, through
   other cameras where two share no frame) and of each board pose.
3. Bundle adjustment (scipy's ``least_squares``, a robust loss): focal lengths, distortion, camera and
   board poses refined together on every detected corner's reprojection.

The world frame is the first camera's; translations are in the board's unit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

from posestream.core.errors import ConfigError
from posestream.engine.extras import require
from posestream.multiview.board import Board
from posestream.multiview.camera import Camera, rodrigues, rodrigues_vector
from posestream.multiview.rig import Rig

MIN_CORNERS = 8  # corners a frame needs in a camera to count for its intrinsics and poses
ROBUST_SCALE_PX = 1.0  # reprojection errors beyond this weigh linearly, not quadratically (Huber loss)


@dataclass
class CalibrationReport:
    """How well the calibration explains the corners it was made from."""

    cameras: list[str]
    frames_used: list[int]  # per camera: frames with >= MIN_CORNERS corners
    reprojection: (
        np.ndarray
    )  # (C, F, K) pixels: detected corners against the adjusted board poses; NaN unseen

    def median_px(self) -> dict[str, float]:
        return {n: float(np.nanmedian(e)) for n, e in zip(self.cameras, self.reprojection)}


def calibrate(
    corners: np.ndarray, board: Board, names: list[str], sizes: list[tuple[int, int]], radial_terms: int = 1
) -> tuple[Rig, CalibrationReport]:
    """The rig seen in ``corners`` (C, F, K, 2): camera c's detections of the board's K corners in frame f
    (NaN where not found; the same f is the same moment in every camera)."""
    corners = np.asarray(corners, dtype=np.float64)
    if corners.shape[0] != len(names) or corners.shape[2] != board.n_corners:
        raise ConfigError(
            f"corners {corners.shape} do not fit {len(names)} cameras and the board's "
            f"{board.n_corners} corners"
        )
    usable = np.isfinite(corners[..., 0]).sum(axis=2) >= MIN_CORNERS  # (C, F)
    for name, frames in zip(names, usable.sum(axis=1)):
        if frames < 3:
            raise ConfigError(
                f"camera {name}: the board is found (>= {MIN_CORNERS} corners) in {frames} frames; "
                "calibration needs at least 3 per camera: film the board at more angles"
            )
    cameras, board_in_camera = zip(
        *(_intrinsics(name, size, corners[c], usable[c], board, radial_terms) for c, (name, size) in
          enumerate(zip(names, sizes)))
    )  # fmt: skip
    relative = _camera_poses(list(board_in_camera), usable, names)
    boards = _board_poses(list(board_in_camera), relative, usable)
    rig = Rig([_posed(camera, pose) for camera, pose in zip(cameras, relative)])
    rig, boards = _adjust(rig, boards, corners, usable, board, radial_terms)
    seen = np.stack([c.project(_board_points(board, boards)) for c in rig.cameras])  # (C, F, K, 2)
    errors = np.linalg.norm(seen - corners, axis=-1)
    errors[~usable] = np.nan
    return rig, CalibrationReport(list(names), usable.sum(axis=1).tolist(), errors)


def _intrinsics(name, size, corners, usable, board, radial_terms) -> tuple[Camera, dict[int, np.ndarray]]:
    """One camera's intrinsics and the board's pose (4, 4) in its frame, by frame."""
    cv2 = require("cv2", extra="calibration", feature="camera calibration (posestream calibrate)")
    frames = np.flatnonzero(usable)
    objects, images = [], []
    for f in frames:
        found = np.isfinite(corners[f, :, 0])
        objects.append(board.object_points()[found].astype(np.float32))
        images.append(corners[f, found].astype(np.float32))
    width, height = size
    guess = np.array(
        [[float(max(size)), 0.0, (width - 1) / 2], [0.0, float(max(size)), (height - 1) / 2], [0, 0, 1]]
    )
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_ASPECT_RATIO
    flags |= cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K3 | (cv2.CALIB_FIX_K2 if radial_terms < 2 else 0)
    try:
        _, matrix, distortions, rotations, translations = cv2.calibrateCamera(
            objects, images, (width, height), guess, np.zeros(5), flags=flags
        )
    except cv2.error as exc:
        raise ConfigError(
            f"camera {name}: OpenCV could not calibrate it from {len(frames)} views of the board "
            f"({exc.err}); film the board at more angles and distances"
        ) from exc
    poses = {int(f): _transform(r.ravel(), t.ravel()) for f, r, t in zip(frames, rotations, translations)}
    return Camera(name, size, matrix, distortions.ravel()), poses


def _transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """A Rodrigues vector and translation as a 4x4 transform."""
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rodrigues(rotation), translation
    return out


def _camera_poses(board_in_camera: list[dict], usable: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Each camera's transform from the first camera's frame (4, 4), walked out from camera 0 across
    cameras that see the board in the same frames."""
    poses: list[np.ndarray | None] = [np.eye(4)] + [None] * (len(names) - 1)
    queue = deque([0])
    while queue:
        a = queue.popleft()
        for b in range(len(names)):
            shared = np.flatnonzero(usable[a] & usable[b])
            if poses[b] is not None or len(shared) == 0:
                continue
            # camera b from camera a, per shared frame: board->b after a->board
            estimates = [board_in_camera[b][f] @ np.linalg.inv(board_in_camera[a][f]) for f in shared]
            poses[b] = _average_transform(estimates) @ poses[a]
            queue.append(b)
    alone = [n for n, p in zip(names, poses) if p is None]
    if alone:
        raise ConfigError(
            f"cameras {alone} never see the board in the same frame as camera {names[0]} or a camera linked "
            "to it; film the board where they and another camera see it at once"
        )
    return poses


def _average_transform(transforms: list[np.ndarray]) -> np.ndarray:
    """A mean of rigid transforms: the rotations' mean (on quaternions, so half turns average right) and
    the translations' median."""
    rotation = Rotation.from_matrix(np.stack([t[:3, :3] for t in transforms])).mean().as_rotvec()
    return _transform(rotation, np.median([t[:3, 3] for t in transforms], axis=0))


def _board_poses(board_in_camera: list[dict], relative: list[np.ndarray], usable: np.ndarray) -> np.ndarray:
    """Each frame's board pose in the world (F, 6: rotation vector, translation); NaN where no camera
    sees it."""
    poses = np.full((usable.shape[1], 6), np.nan)
    for f in range(usable.shape[1]):
        seen = [c for c in range(usable.shape[0]) if usable[c, f]]
        if seen:
            world = [np.linalg.inv(relative[c]) @ board_in_camera[c][f] for c in seen]
            average = _average_transform(world)
            poses[f] = np.concatenate([rodrigues_vector(average[:3, :3]), average[:3, 3]])
    return poses


def _posed(camera: Camera, transform: np.ndarray) -> Camera:
    return Camera(
        camera.name, camera.size, camera.matrix, camera.distortions, rodrigues_vector(transform[:3, :3]),
        transform[:3, 3],
    )  # fmt: skip


def _board_points(board: Board, poses: np.ndarray) -> np.ndarray:
    """The board's corners in the world for each frame's pose (F, K, 3); NaN for frames without one."""
    corners = board.object_points()
    return np.stack([corners @ rodrigues(p[:3]).T + p[3:] if np.isfinite(p).all() else corners * np.nan
                     for p in poses])  # fmt: skip


def _adjust(
    rig: Rig, boards: np.ndarray, corners: np.ndarray, usable: np.ndarray, board: Board, radial_terms: int
):
    """Bundle adjustment: focal lengths, radial terms, camera poses (all but the first) and board poses."""
    n_cameras = len(rig.cameras)
    frames = np.flatnonzero(np.isfinite(boards[:, 0]))
    observed = usable[:, frames, None] & np.isfinite(corners[:, frames][..., 0])  # (C, F', K)
    layout = _Layout(n_cameras, len(frames), radial_terms)

    def residuals(x: np.ndarray) -> np.ndarray:
        cameras, poses = layout.unpack(x, rig)
        world = _board_points(board, poses)  # (F', K, 3)
        seen = np.stack([c.project(world) for c in cameras])  # (C, F', K, 2)
        return (seen - corners[:, frames])[observed].ravel()

    x0 = layout.pack(rig, boards[frames])
    result = least_squares(
        residuals, x0, loss="huber", f_scale=ROBUST_SCALE_PX, x_scale="jac",
        jac_sparsity=layout.sparsity(observed), method="trf", max_nfev=200,
    )  # fmt: skip
    cameras, poses = layout.unpack(result.x, rig)
    adjusted = np.full_like(boards, np.nan)
    adjusted[frames] = poses
    return Rig(cameras, {"error": float(np.sqrt(np.mean(result.fun**2)))}), adjusted


class _Layout:
    """Where each unknown lies in the bundle adjustment's parameter vector: per camera its focal length and
    radial terms, and for all but the first (the world's frame) its rotation and translation; then each
    frame's board pose (rotation, translation)."""

    def __init__(self, n_cameras: int, n_frames: int, radial_terms: int):
        self.n_frames, self.radial = n_frames, radial_terms
        sizes = [1 + radial_terms + (6 if c else 0) for c in range(n_cameras)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)])  # camera c: starts[c] .. starts[c + 1]
        self.boards_at = int(self.starts[-1])

    def pack(self, rig: Rig, boards: np.ndarray) -> np.ndarray:
        parts = []
        for c, camera in enumerate(rig.cameras):
            parts += [[camera.matrix[0, 0]], camera.distortions[: self.radial]]
            parts += [camera.rotation, camera.translation] if c else []
        return np.concatenate([np.concatenate(parts), boards.ravel()])

    def unpack(self, x: np.ndarray, rig: Rig) -> tuple[list[Camera], np.ndarray]:
        cameras = []
        for c, template in enumerate(rig.cameras):
            p = x[self.starts[c] : self.starts[c + 1]]
            matrix = template.matrix.copy()
            matrix[0, 0] = matrix[1, 1] = p[0]
            distortions = np.zeros(5)
            distortions[: self.radial] = p[1 : 1 + self.radial]
            rotation, translation = (p[-6:-3], p[-3:]) if c else (np.zeros(3), np.zeros(3))
            cameras.append(Camera(template.name, template.size, matrix, distortions, rotation, translation))
        return cameras, x[self.boards_at :].reshape(self.n_frames, 6)

    def sparsity(self, observed: np.ndarray) -> coo_matrix:
        """(residuals, parameters), sparse: the unknowns each residual (x, then y, per observation) moves."""
        cams, frames, _ = np.nonzero(observed)
        rows, columns = [], []
        for axis in (0, 1):
            residual = 2 * np.arange(len(cams)) + axis
            for c in range(len(self.starts) - 1):
                mine = residual[cams == c]
                own = np.arange(self.starts[c], self.starts[c + 1])
                rows.append(np.repeat(mine, len(own)))
                columns.append(np.tile(own, len(mine)))
            rows.append(np.repeat(residual, 6))
            columns.append((self.boards_at + 6 * frames[:, None] + np.arange(6)).ravel())
        rows, columns = np.concatenate(rows), np.concatenate(columns)
        shape = (2 * len(cams), self.boards_at + 6 * self.n_frames)
        return coo_matrix((np.ones(len(rows), dtype=bool), (rows, columns)), shape=shape)
