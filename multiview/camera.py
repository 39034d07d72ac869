"""One calibrated camera: the pinhole model with OpenCV's distortion, in anipose's conventions.

A world point X (board units, e.g. mm) is seen at ``R @ X + t`` in the camera's frame, where R is the
Rodrigues vector ``rotation`` as a matrix and t is ``translation``; that point is divided by its depth,
distorted by ``distortions`` (k1, k2, p1, p2, k3) and mapped to pixels by ``matrix``. anipose's and
sleap-anipose's ``calibration.toml`` store exactly these fields.

Vectorised over any leading shape by the engine's compiled kernels (engine/kernels/triangulation.py, the
one implementation of the model), so the live path needs no OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from posestream.core.errors import ConfigError
from posestream.engine import kernels


def rodrigues(rotation: np.ndarray) -> np.ndarray:
    """A Rodrigues vector (3,) as a rotation matrix (3, 3)."""
    return Rotation.from_rotvec(np.asarray(rotation, dtype=np.float64)).as_matrix()


def rodrigues_vector(matrix: np.ndarray) -> np.ndarray:
    """A rotation matrix (3, 3) as a Rodrigues vector (3,): the inverse of ``rodrigues``."""
    return Rotation.from_matrix(np.asarray(matrix, dtype=np.float64)).as_rotvec()


@dataclass
class Camera:
    """A calibrated camera. ``size`` is (width, height) in pixels."""

    name: str
    size: tuple[int, int]
    matrix: np.ndarray  # (3, 3) intrinsics
    distortions: np.ndarray = field(default_factory=lambda: np.zeros(5))  # (5,) k1 k2 p1 p2 k3
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) Rodrigues, world -> camera
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) board units

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        distortions = np.asarray(self.distortions, dtype=np.float64).ravel()
        if distortions.size > 5 and distortions[5:].any():
            raise ConfigError(
                f"camera {self.name}: {distortions.size} distortion coefficients; posestream's camera model "
                "has OpenCV's first 5 (k1 k2 p1 p2 k3). Calibrate it again with `posestream calibrate`"
            )
        self.distortions = np.pad(distortions, (0, 5))[:5]
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        self.size = (int(self.size[0]), int(self.size[1]))

    @property
    def extrinsics(self) -> np.ndarray:
        """[R | t] (3, 4): world points to this camera's frame."""
        return np.ascontiguousarray(np.hstack([rodrigues(self.rotation), self.translation[:, None]]))

    @property
    def center(self) -> np.ndarray:
        """The camera's position in world units (3,)."""
        return -rodrigues(self.rotation).T @ self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) to pixels (..., 2); NaN stays NaN."""
        points = np.ascontiguousarray(points, dtype=np.float64)
        flat = points.reshape(-1, 3)
        out = np.empty((flat.shape[0], 2))
        kernels.load().project_points(flat, self.extrinsics, self.matrix, self.distortions, out)
        return out.reshape(*points.shape[:-1], 2)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) to ideal normalised coordinates (..., 2), undoing ``project``'s last step."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float64)
        flat = pixels.reshape(-1, 2)
        out = np.empty_like(flat)
        kernels.load().undistort_points(flat, self.matrix, self.distortions, out)
        return out.reshape(pixels.shape)
