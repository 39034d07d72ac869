"""``Instances``: one frame's (or crop's) poses as a model's decoder gives them, and ``InstanceBatch``, a
whole batch's, before they become a ``FrameBlock`` (engine/types.py) in frame order."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Instances:
    """One frame's (or crop's) instances in the model's input pixels (before ``input_scale``).

    points: (N, n_nodes, 2), NaN where a node is not found; point_scores: (N, n_nodes);
    instance_scores: (N,); identities: (N,) class of each instance for identity models (-1: none), and
    identity_scores: (N,) the model's confidence in it; both None for models without identities (no
    arrays made per frame for them: FramePredictions reads None as untracked).
    """

    points: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    identities: np.ndarray | None = None
    identity_scores: np.ndarray | None = None

    @classmethod
    def concat(cls, parts: list[Instances], n_nodes: int) -> Instances:
        """All instances of ``parts`` in one (none if ``parts`` is empty)."""
        if not parts:
            return cls(
                np.zeros((0, n_nodes, 2), np.float32),
                np.zeros((0, n_nodes), np.float32),
                np.zeros(0, np.float32),
            )
        poses = [
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("points", "point_scores", "instance_scores")
        ]
        if all(p.identities is None for p in parts):
            return cls(*poses)
        identities = np.concatenate(
            [np.full(len(p.points), -1, np.int32) if p.identities is None else p.identities for p in parts]
        )
        scores = np.concatenate(
            [
                np.full(len(p.points), np.nan, np.float32) if p.identity_scores is None else p.identity_scores
                for p in parts
            ]
        )
        return cls(*poses, identities, scores)

    def moved(self, offset: np.ndarray) -> Instances:
        """The same instances with their points moved by ``offset`` (2,), or one per instance (N, 1, 2) (a
        crop's origin in its frame)."""
        return replace(self, points=self.points + offset.astype(np.float32))

    def with_identities(self, identities: np.ndarray, scores: np.ndarray) -> Instances:
        return replace(
            self, identities=identities.astype(np.int32), identity_scores=scores.astype(np.float32)
        )


@dataclass(frozen=True)
class InstanceBatch:
    """A batch's instances, sample after sample: sample b's are rows ``starts[b]:starts[b] + counts[b]`` of
    ``instances``. counts: (B,) int64."""

    instances: Instances
    counts: np.ndarray

    @classmethod
    def empty(cls, n_samples: int, n_nodes: int) -> InstanceBatch:
        """A batch of ``n_samples`` samples without instances."""
        return cls(Instances.concat([], n_nodes), np.zeros(n_samples, np.int64))

    @classmethod
    def of(cls, parts: list[Instances], n_nodes: int) -> InstanceBatch:
        """The batch of per-sample ``parts``."""
        return cls(Instances.concat(parts, n_nodes), np.array([len(p.points) for p in parts], np.int64))

    def split(self) -> list[Instances]:
        """One ``Instances`` per sample (views of the batch's arrays)."""
        bounds = np.cumsum(self.counts)[:-1]
        found = self.instances
        arrays = [
            np.split(a, bounds) if a is not None else [None] * len(self.counts)
            for a in (
                found.points,
                found.point_scores,
                found.instance_scores,
                found.identities,
                found.identity_scores,
            )
        ]
        return [Instances(*sample) for sample in zip(*arrays)]
