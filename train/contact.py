"""Examples where animals touch, drawn more often (``data.contact_repeats``).

Where two animals touch, a network places the points of one on the other: the frames that decide the score
are the rare ones (the fly labels: 4% of training frames have the flies within 5 px of each other, 22% of
the held-out ones; benchmarks/RESULTS.md, "Where the flies touch"). An example is *in contact* when its animal
(a centered-instance crop), or any animal of its frame (whole-frame models), has a point within
``data.contact_px`` frame pixels of another animal's point; each epoch then holds it ``contact_repeats``
times instead of once, so the network sees those examples that much more often, each time with its own
augmentation. ``contact_px`` null: a tenth of the labelled animals' size (train/fit.py's A).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTACT_FRACTION = 0.1  # contact_px null: this share of the animals' size A


def nearest_gaps(points: np.ndarray) -> np.ndarray:
    """Each animal's smallest distance to a point of another animal of its frame, frame pixels.

    points: (I, N, 2), NaN where unlabelled  -> (I,); inf for an animal alone or with no visible point."""
    visible = [p[np.isfinite(p).all(axis=1)] for p in points]  # I x (n_i, 2)
    gaps = np.full(len(points), np.inf)
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if len(visible[i]) and len(visible[j]):
                gap = np.linalg.norm(visible[i][:, None] - visible[j][None], axis=-1).min()
                gaps[i], gaps[j] = min(gaps[i], gap), min(gaps[j], gap)
    return gaps


def frame_gap(points: np.ndarray) -> float:
    """A frame's smallest distance between two of its animals, frame pixels; inf with fewer than two.
    points: (I, N, 2)"""
    return float(nearest_gaps(points).min(initial=np.inf))


@dataclass(frozen=True)
class ContactSampling:
    """How often each training example is drawn per epoch, and why (for the run's start)."""

    repeats: np.ndarray  # (n_examples,) int, >= 1
    distance_px: float
    times: int

    @classmethod
    def of(cls, gaps: np.ndarray, distance_px: float, times: int) -> ContactSampling:
        """``gaps`` (n_examples,): each example's smallest gap between animals, frame pixels."""
        repeats = np.where(np.asarray(gaps) < distance_px, times, 1).astype(np.int64)
        return cls(repeats, float(distance_px), int(times))

    @property
    def in_contact(self) -> int:
        return int((self.repeats > 1).sum())

    def describe(self) -> str:
        share = self.in_contact / max(len(self.repeats), 1)
        return (
            f"contact sampling: {self.in_contact} of {len(self.repeats)} examples ({share:.0%}) have animals "
            f"within {self.distance_px:.1f} px of each other, drawn {self.times} times an epoch"
        )
