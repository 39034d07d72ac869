"""Tracker settings: typed, validated when built, with errors that name the option to fix."""

from __future__ import annotations

from dataclasses import dataclass

from posestream.core.errors import ConfigError

SIMILARITIES = ("oks", "centroid", "iou")
MATCHERS = ("hungarian", "greedy")


@dataclass(frozen=True)
class TrackerConfig:
    """How the online tracker scores, matches and keeps tracks.

    Times are seconds of video time (frame index / fps), so a setting means the same at 15 Hz and at 500 Hz.

    similarity: "oks" (keypoint similarity with a per-instance scale), "centroid" (distance of the
        centroids over the nodes both poses have), or "iou" (bounding boxes).
    match: "hungarian" (best total similarity, scipy's solver) or "greedy" (best pair first).
    max_age: seconds a lost track is kept; a detection that fits it within that time continues it.
    max_tracks: the known number of animals: never more identities than this (None: no limit).
    kalman: predict each track's centroid with a constant-velocity Kalman filter instead of a smoothed
        velocity.
    min_similarity: the gate; a detection less similar than this to a track's prediction never continues it.
    high_score: instances scoring at least this match first and may start tracks; the others may only
        continue a track.
    sigma: width of the similarity kernels, as a fraction of the track's scale (the square root of its
        bounding-box area, as in COCO's OKS).
    min_scale: pixels; the smallest scale assumed (a one-node pose has no extent).
    velocity_smoothing: seconds; time constant of the smoothed centroid velocity (without --kalman).
    drift: scales per second; how fast a prediction's uncertainty grows with the time since the track
        was seen (without --kalman; the kernel widens by it, so a lost animal is found where it wandered).
    acceleration: scales per second squared; the Kalman filter's process noise (with --kalman).
    """

    similarity: str = "oks"
    match: str = "hungarian"
    max_age: float = 1.0
    max_tracks: int | None = None
    kalman: bool = False
    min_similarity: float = 0.2
    high_score: float = 0.5
    sigma: float = 0.15
    min_scale: float = 8.0
    velocity_smoothing: float = 0.05
    drift: float = 2.0
    acceleration: float = 10.0

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ConfigError(
                f"--similarity must be one of {', '.join(SIMILARITIES)}, got {self.similarity!r}"
            )
        if self.match not in MATCHERS:
            raise ConfigError(f"--match must be one of {', '.join(MATCHERS)}, got {self.match!r}")
        if not self.max_age >= 0:
            raise ConfigError(f"--track-max-age must be >= 0 seconds, got {self.max_age}")
        if self.max_tracks is not None and self.max_tracks < 1:
            raise ConfigError(
                f"--max-tracks must be at least 1 (or left out for no limit), got {self.max_tracks}"
            )
        if not 0 <= self.min_similarity < 1:
            raise ConfigError(f"min_similarity must be in [0, 1), got {self.min_similarity}")
        for name in ("sigma", "min_scale", "velocity_smoothing", "drift", "acceleration"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"tracker {name} must be > 0, got {getattr(self, name)}")
