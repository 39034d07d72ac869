"""Where each track's centroid will be: a smoothed constant velocity, or a constant-velocity Kalman filter.

Both keep a fixed-size state per track (rows aligned with the tracker's) and change it only when the track is
observed; a prediction is computed from the last observation and the time since, so a lost track costs nothing
per frame. Velocities are in pixels per second: the same settings hold at any frame rate.
"""

from __future__ import annotations

import numpy as np

MEASUREMENT_NOISE = 0.05  # scales: standard deviation of an observed centroid (Kalman)
INITIAL_SPEED = 2.0  # scales per second: standard deviation of a new track's unknown velocity (Kalman)


class SmoothedVelocity:
    """Centroid velocity per track, exponentially smoothed with time constant ``tau`` seconds; a prediction
    ``dt`` seconds ahead is uncertain by ``drift * scale * dt`` pixels.

    velocity (T, 2) px/s; observed (T,) bool: whether the track has a velocity estimate yet.
    """

    def __init__(self, tau: float, drift: float):
        self.tau, self.drift = tau, drift
        self.velocity = np.zeros((0, 2))
        self.observed = np.zeros(0, bool)

    def add(self, centroids: np.ndarray, scales: np.ndarray) -> None:
        """New tracks at ``centroids`` (K, 2), standing still."""
        self.velocity = np.concatenate([self.velocity, np.zeros((len(centroids), 2))])
        self.observed = np.concatenate([self.observed, np.zeros(len(centroids), bool)])

    def keep(self, mask: np.ndarray) -> None:
        self.velocity, self.observed = self.velocity[mask], self.observed[mask]

    def restart(self, rows: np.ndarray, centroids: np.ndarray, scales: np.ndarray) -> None:
        """Tracks ``rows`` start again at ``centroids`` (K, 2), standing still."""
        self.velocity[rows], self.observed[rows] = 0.0, False

    def predict_shift(self, dt: np.ndarray) -> np.ndarray:
        """Centroid displacement of every track ``dt`` (T,) seconds after its last observation.  # (T, 2)"""
        return self.velocity * dt[:, None]

    def uncertainty(self, dt: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Standard deviation (pixels) of each predicted centroid ``dt`` (T,) seconds ahead.  # (T,)"""
        return self.drift * scales * dt

    def observe(
        self, rows: np.ndarray, shift: np.ndarray, dt: np.ndarray, scales: np.ndarray, confidence: np.ndarray
    ) -> None:
        """Tracks ``rows`` (K,) moved by ``shift`` (K, 2) in ``dt`` (K,) seconds since their last observation;
        ``confidence`` (K,) in [0, 1] weighs each measurement (the fraction of nodes it rests on)."""
        measured = shift / np.maximum(dt, 1e-9)[:, None]
        weight = np.where(self.observed[rows], (1.0 - np.exp(-dt / self.tau)) * confidence, 1.0)[:, None]
        self.velocity[rows] = weight * measured + (1.0 - weight) * self.velocity[rows]
        self.observed[rows] = True


class ConstantVelocityKalman:
    """A constant-velocity Kalman filter of each track's centroid, x and y independent.

    position, velocity (T, 2); covariance (T, 2, 2) of (position, velocity), shared by x and y since
    both axes see the same model and noise. Process noise: white acceleration of ``acceleration``
    scales/s^2; measurement noise MEASUREMENT_NOISE scales.
    """

    def __init__(self, acceleration: float):
        self.acceleration = acceleration
        self.position = np.zeros((0, 2))
        self.velocity = np.zeros((0, 2))
        self.covariance = np.zeros((0, 2, 2))
        self._anchor = np.zeros((0, 2))  # the observed centroid the tracker's pose template sits on

    def add(self, centroids: np.ndarray, scales: np.ndarray) -> None:
        k = len(centroids)
        covariance = np.zeros((k, 2, 2))
        covariance[:, 0, 0] = np.square(MEASUREMENT_NOISE * scales)
        covariance[:, 1, 1] = np.square(INITIAL_SPEED * scales)
        self.position = np.concatenate([self.position, centroids])
        self.velocity = np.concatenate([self.velocity, np.zeros((k, 2))])
        self.covariance = np.concatenate([self.covariance, covariance])
        self._anchor = np.concatenate([self._anchor, centroids])

    def keep(self, mask: np.ndarray) -> None:
        self.position, self.velocity = self.position[mask], self.velocity[mask]
        self.covariance, self._anchor = self.covariance[mask], self._anchor[mask]

    def restart(self, rows: np.ndarray, centroids: np.ndarray, scales: np.ndarray) -> None:
        """Tracks ``rows`` start again at ``centroids`` (K, 2), standing still, as new ones do."""
        fresh = ConstantVelocityKalman(self.acceleration)
        fresh.add(centroids, scales)
        self.position[rows], self.velocity[rows] = fresh.position, fresh.velocity
        self.covariance[rows], self._anchor[rows] = fresh.covariance, fresh._anchor

    def predict_shift(self, dt: np.ndarray) -> np.ndarray:
        """Predicted centroid minus the last observed one (where the pose template sits).  # (T, 2)"""
        return self.position + self.velocity * dt[:, None] - self._anchor

    def uncertainty(self, dt: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Standard deviation (pixels) of each predicted centroid ``dt`` (T,) seconds ahead: the filter's
        position variance carried forward.  # (T,)"""
        p = self.covariance
        q = np.square(self.acceleration * scales)
        return np.sqrt(p[:, 0, 0] + 2 * dt * p[:, 0, 1] + dt**2 * p[:, 1, 1] + q * dt**3 / 3)

    def observe(
        self, rows: np.ndarray, shift: np.ndarray, dt: np.ndarray, scales: np.ndarray, confidence: np.ndarray
    ) -> None:
        """Correct tracks ``rows`` (K,) with their new centroid: the last one moved by ``shift`` (K, 2);
        ``confidence`` (K,) in (0, 1] scales the measurement's precision (the fraction of nodes it rests
        on)."""
        measured = self._anchor[rows] + shift  # (K, 2)
        q = np.square(self.acceleration * scales)  # (K,)
        p = self.covariance[rows]
        # predict: P <- F P F^T + Q, F = [[1, dt], [0, 1]], Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]
        p00 = p[:, 0, 0] + 2 * dt * p[:, 0, 1] + dt**2 * p[:, 1, 1] + q * dt**3 / 3
        p01 = p[:, 0, 1] + dt * p[:, 1, 1] + q * dt**2 / 2
        p11 = p[:, 1, 1] + q * dt
        position = self.position[rows] + self.velocity[rows] * dt[:, None]
        # correct with the measured position: gain K = P H^T / (H P H^T + R), H = [1, 0]
        s = p00 + np.square(MEASUREMENT_NOISE * scales) / np.maximum(confidence, 0.05)
        k0, k1 = p00 / s, p01 / s
        innovation = measured - position
        self.position[rows] = position + k0[:, None] * innovation
        self.velocity[rows] = self.velocity[rows] + k1[:, None] * innovation
        self.covariance[rows] = np.stack(
            [np.stack([(1 - k0) * p00, (1 - k0) * p01], -1), np.stack([p01 - k1 * p00, p11 - k1 * p01], -1)],
            1,
        )
        self._anchor[rows] = measured
