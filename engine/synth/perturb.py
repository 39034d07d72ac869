"""Ground truth perturbed into "detections": what a pose model would hand the tracker.

Per frame, from the true poses of every animal:

- jitter: Gaussian noise of ``jitter`` pixels (standard deviation per coordinate) on every node;
- dropped nodes: each node of each instance is missing with probability ``drop_nodes``;
- missing instances: an animal goes undetected in runs of 1-5 frames, ``drop_instances`` of the
  time in all (a detector misses an animal for a while, not one frame in a thousand at random);
- false instances: ``false_instances`` per true instance, on average: half are fragments of a real
  animal (2 to half of its nodes, a little off), half are whole phantom animals elsewhere in the
  frame (a real pose turned and moved);
- scores: each node 0.5-1; an instance scores the sum of its node scores over the skeleton's size
  (as a bottom-up model's), so fragments score low; phantoms score 0.3-1.

The instances of a frame come in a random order and untracked: nothing gives their identity away.
The same seed gives the same detections; the random stream is separate from the video's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.types import FramePredictions

GAP_FRAMES = (1, 5)  # missing-instance runs last this many frames (uniform, inclusive)


@dataclass(frozen=True)
class PerturbConfig:
    jitter: float = 0.0  # pixels, standard deviation per coordinate
    drop_nodes: float = 0.0  # probability that a node is missing
    drop_instances: float = 0.0  # fraction of (frame, animal) pairs without a detection
    false_instances: float = 0.0  # false instances per true instance
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.jitter >= 0:
            raise ConfigError(f"--jitter must be >= 0 pixels, got {self.jitter}")
        for name in ("drop_nodes", "drop_instances", "false_instances"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be a fraction in [0, 1), got {getattr(self, name)}"
                )

    @property
    def active(self) -> bool:
        return bool(self.jitter or self.drop_nodes or self.drop_instances or self.false_instances)


class Perturber:
    """Turns each frame's true poses into detections; keeps the per-animal gap state between frames."""

    def __init__(self, config: PerturbConfig, width: int, height: int, n_animals: int):
        self.config, self.size = config, np.array([width, height], np.float64)
        self.rng = np.random.default_rng([config.seed, 2])
        self._gap_left = np.zeros(n_animals, np.int64)  # frames each animal stays undetected
        mean_gap = sum(GAP_FRAMES) / 2
        rate = config.drop_instances
        self._gap_start = rate / (mean_gap * (1 - rate))  # so that `rate` of the time is spent in gaps

    def __call__(self, frame_idx: int, poses: np.ndarray) -> FramePredictions:
        """Detections of one frame from the true poses (n_animals, n_nodes, 2)."""
        rng, cfg = self.rng, self.config
        n_animals, n_nodes, _ = poses.shape
        starts = (self._gap_left == 0) & (rng.random(n_animals) < self._gap_start)
        self._gap_left[starts] = rng.integers(GAP_FRAMES[0], GAP_FRAMES[1] + 1, starts.sum())
        seen = self._gap_left == 0
        self._gap_left = np.maximum(self._gap_left - 1, 0)
        points = (
            poses[seen] + rng.normal(0, cfg.jitter, (int(seen.sum()), n_nodes, 2))
            if cfg.jitter
            else poses[seen]
        )
        points = np.where(rng.random(points.shape[:2])[..., None] < cfg.drop_nodes, np.nan, points)
        fakes = [self._false_instance(poses) for _ in range(rng.poisson(cfg.false_instances * n_animals))]
        points = np.concatenate([points, *[f[None] for f in fakes]]) if fakes else points
        node_scores = np.where(np.isfinite(points[..., 0]), rng.uniform(0.5, 1.0, points.shape[:2]), np.nan)
        scores = np.nansum(node_scores, axis=1) / n_nodes
        n_true = int(seen.sum())
        scores[n_true:] = [
            rng.uniform(0.3, 1.0) if np.isfinite(f).all() else s for f, s in zip(fakes, scores[n_true:])
        ]
        order = rng.permutation(len(points))
        return FramePredictions(frame_idx, points[order], node_scores[order], scores[order])

    def _false_instance(self, poses: np.ndarray) -> np.ndarray:
        """A fragment of a real animal, or a whole phantom one elsewhere.  # (n_nodes, 2)"""
        rng = self.rng
        source = poses[rng.integers(len(poses))]
        n_nodes = len(source)
        extent = np.linalg.norm(np.ptp(source, axis=0))
        if rng.random() < 0.5:
            keep = rng.choice(n_nodes, rng.integers(2, max(n_nodes // 2, 2) + 1), replace=False)
            fragment = np.full_like(source, np.nan)
            fragment[keep] = (
                source[keep] + rng.normal(0, 0.05 * extent, 2) + rng.normal(0, 0.02 * extent, (len(keep), 2))
            )
            return fragment
        angle = rng.uniform(-np.pi, np.pi)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        centered = (source - source.mean(axis=0)) @ rotation.T
        return centered + rng.uniform(0.1, 0.9, 2) * self.size
