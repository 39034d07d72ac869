"""``Instances``: one frame's (or crop's) poses as a model's decoder gives them, before they become
``FramePredictions`` (engine/types.py) in frame order."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Instances:
    """One frame's (or crop's) instances in the model's input pixels (before ``input_scale``).

    points: (N, n_nodes, 2), NaN where a node is not found; point_scores: (N, n_nodes);
    instance_scores: (N,); identities: (N,) class of each instance for identity models, else -1;
    identity_scores: (N,) the model's confidence in it, NaN without one.
    """

    points: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    identities: np.ndarray = None  # type: ignore[assignment]
    identity_scores: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.identities is None:
            object.__setattr__(self, "identities", np.full(len(self.points), -1, np.int32))
        if self.identity_scores is None:
            object.__setattr__(self, "identity_scores", np.full(len(self.points), np.nan, np.float32))

    @classmethod
    def concat(cls, parts: list[Instances], n_nodes: int) -> Instances:
        """All instances of ``parts`` in one (none if ``parts`` is empty)."""
        if not parts:
            return cls(np.zeros((0, n_nodes, 2), np.float32), np.zeros((0, n_nodes), np.float32), np.zeros(0, np.float32))
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in INSTANCE_ARRAYS))

    def moved(self, offset: np.ndarray) -> Instances:
        """The same instances with their points moved by ``offset`` (2,) (a crop's origin in its frame)."""
        return replace(self, points=self.points + offset.astype(np.float32))

    def with_identities(self, identities: np.ndarray, scores: np.ndarray) -> Instances:
        return replace(self, identities=identities.astype(np.int32), identity_scores=scores.astype(np.float32))


INSTANCE_ARRAYS = ("points", "point_scores", "instance_scores", "identities", "identity_scores")
