"""The online tracker: identities across frames, one frame at a time, with bounded state.

    tracker = Tracker(TrackerConfig(max_tracks=2), fps=30.0)
    for frame in frames:                  # FramePredictions in time order
        tracker.update(frame)             # fills frame.track_ids and frame.tracking_scores

Each frame:

1. Forget tracks lost for more than ``max_age`` seconds (with ``max_tracks``, identities are kept:
   there are never more than that many).
2. Predict every track's pose now: its last pose moved by its centroid's motion (smoothed velocity, or
   a Kalman filter) over the time since it was seen.
3. Match in two stages by instance score (as ByteTrack does): confident instances to every track, then
   the others to the tracks of the last frame still free. A lost track's kernel widens with the time
   since it was seen, and it is also tried where it was last seen; the assignment prefers, among pairs
   that fit, fresh tracks over stale ones (its similarity discounted by how much its kernel widened).
   Hungarian (or greedy), gated: a pair below ``min_similarity`` is never made.
4. Confident instances left over start new tracks; at ``max_tracks``, they take the best-fitting
   identity lost for longer than ``max_age`` instead (by predicted and last observed position; one
   lost for less is only continued by step 3). Instances left after that keep their pose, untracked
   (track id -1).

A track's state is fixed in size: its pose template (every node it has seen, the missing ones moved
with the rest), scale, last time seen and motion state. Nothing grows with the video's length.

Tracking scores: the similarity of the instance to its track's prediction; 0 for the first instance
of a track; NaN for an untracked instance.
"""

from __future__ import annotations

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.tracking import templates
from posestream.engine.tracking.config import TrackerConfig
from posestream.engine.tracking.matching import match
from posestream.engine.tracking.motion import ConstantVelocityKalman, SmoothedVelocity
from posestream.engine.tracking.similarity import centroids, scale_of, similarity_matrix
from posestream.engine.types import UNTRACKED, FrameBlock, FramePredictions

NEVER = -1.0  # similarity of pairs that may not match (below any gate)
LOST_FRAMES = 1.5  # a track not seen for this many frame intervals is lost


class Tracker:
    """Assigns track ids to the instances of frames given in time order; see the module docstring."""

    def __init__(self, config: TrackerConfig = TrackerConfig(), fps: float = 30.0):
        if not fps > 0:
            raise ConfigError(f"the tracker needs the frame rate to turn frames into seconds; got fps={fps}")
        self.config, self.fps = config, float(fps)
        self.reset()

    def reset(self) -> None:
        """Forget every track (identities start again at 0)."""
        cfg = self.config
        self._motion = (
            ConstantVelocityKalman(cfg.acceleration)
            if cfg.kalman
            else SmoothedVelocity(cfg.velocity_smoothing, cfg.drift)
        )
        self._ids = np.zeros(0, np.int64)  # (T,)
        self._poses: np.ndarray | None = None  # (T, N, 2) pose templates; None until the first frame fixes N
        self._scales = np.zeros(0)  # (T,)
        self._seen = np.zeros(0)  # (T,) seconds
        self._next_id = 0
        self._now = -np.inf

    @property
    def identities(self) -> int:
        """How many identities have been started (ids 0 .. identities - 1)."""
        return self._next_id

    @property
    def now(self) -> float:
        """Time of the last frame tracked (seconds; -inf before the first)."""
        return self._now

    @property
    def track_ids(self) -> list[int]:
        """Ids of the tracks held now (seen within max_age, or every identity with max_tracks)."""
        return self._ids.tolist()

    def update(self, frame: FramePredictions, time: float | None = None) -> FramePredictions:
        """Fill ``frame.track_ids`` and ``frame.tracking_scores`` (in place) and return the frame.

        time: seconds; default ``frame.frame_idx / fps``. Frames must come in time order.
        """
        frame.track_ids, frame.tracking_scores = self._track(
            frame.frame_idx, frame.points, frame.instance_scores, time
        )
        return frame

    def update_block(self, block: FrameBlock) -> FrameBlock:
        """Fill a block's ``track_ids`` and ``tracking_scores`` (in place), frame after frame at ``frame_idx /
        fps``, and return it. An error carries ``frame_idx``, the frame it happened on."""
        for f in range(len(block)):
            rows = block.rows(f)
            try:
                block.track_ids[rows], block.tracking_scores[rows] = self._track(
                    int(block.frame_idx[f]), block.points[rows], block.instance_scores[rows], None
                )
            except Exception as exc:
                exc.frame_idx = int(block.frame_idx[f])  # the pipeline's error names the frame
                raise
        return block

    def _track(
        self, frame_idx: int, points: np.ndarray, instance_scores: np.ndarray, time: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Track ids (M,) int32 and tracking scores (M,) float32 of one frame's instances, points (M, N,
        2)."""
        now = frame_idx / self.fps if time is None else float(time)
        if now < self._now:
            raise ValueError(
                f"frame {frame_idx} (t={now:.4f} s) comes before the last frame tracked "
                f"(t={self._now:.4f} s); the tracker needs frames in time order"
            )
        self._now = now
        if self._poses is None:
            self._poses = np.zeros((0, points.shape[1], 2))
        elif points.shape[1] != self._poses.shape[1]:
            raise ValueError(
                f"frame {frame_idx} has {points.shape[1]} nodes per instance; the tracks "
                f"have {self._poses.shape[1]}"
            )
        self._forget(now)
        ids = np.full(len(points), UNTRACKED, np.int32)
        scores = np.full(len(points), np.nan, np.float32)
        if len(points):
            self._assign(points.astype(np.float64), instance_scores, now, ids, scores)
        return ids, scores

    # -- one frame ------------------------------------------------------------

    def _assign(
        self, points: np.ndarray, instance_scores: np.ndarray, now: float, ids: np.ndarray, scores: np.ndarray
    ) -> None:
        """Match ``points`` (M, N, 2) to the tracks and start new ones; writes ``ids`` and ``scores`` (M,)."""
        cfg = self.config
        since = now - self._seen  # (T,) seconds since each track was seen
        predicted = self._predicted(np.minimum(since, cfg.max_age))  # (T, N, 2)
        similarity, preference = self._similarity(points, predicted, np.minimum(since, cfg.max_age))
        similarity[:, since > cfg.max_age] = (
            NEVER  # long-lost identities (kept with max_tracks) only by count
        )
        similarity[~np.isfinite(points[..., 0]).any(axis=1)] = NEVER  # an instance without nodes
        confident = instance_scores >= cfg.high_score
        active = since <= LOST_FRAMES / self.fps
        pairs: list[tuple[int, int]] = []
        free = np.ones(len(points), bool), np.ones(len(self._ids), bool)  # detections, tracks not yet paired
        for detections, tracks in ((confident, free[1]), (~confident, active)):
            pairs += self._stage(similarity, preference, detections & free[0], tracks & free[1], free)
        matched = {d for d, _ in pairs}
        starters = [
            d
            for d in np.argsort(-instance_scores, kind="stable").tolist()
            if confident[d] and d not in matched and np.isfinite(points[d, :, 0]).any()
        ]
        reused = self._by_count(points, starters, pairs, predicted, since)
        for found, update in ((pairs, self._observe), (reused, self._restart)):
            if found:
                det, rows = (np.array(v, np.int64) for v in zip(*found))
                ids[det] = self._ids[rows]
                scores[det] = np.clip(similarity[det, rows], 0.0, 1.0)
                update(rows, points[det], now)
        pairs += reused
        reused = {d for d, _ in pairs}
        new = [d for d in starters if d not in reused][: self._room()]
        if new:
            ids[new] = self._start(points[new], now)
            scores[new] = 0.0

    def _similarity(
        self, points: np.ndarray, predicted: np.ndarray, age: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarity of each detection to each track, which the gate reads (how well the nodes the detection
        has fit), and the preference the assignment maximizes: the similarity times the share of the track's
        nodes the detection has (a whole animal wins over a fragment of it that fits as well), discounted by
        how much the track's kernel has widened since it was lost (a fresh track wins over a stale one).
        (M, N, 2), (T, N, 2), (T,) -> (M, T) x 2
        """
        cfg = self.config
        base = cfg.sigma * self._scales  # (T,) a fresh track's kernel width, pixels
        width = np.hypot(base, self._motion.uncertainty(age, self._scales))
        if (
            cfg.similarity == "iou"
        ):  # boxes padded by an uncertainty would all overlap: IoU keeps the fresh width
            width = base
        similarity = similarity_matrix(cfg.similarity, points, predicted, width)
        lost = np.flatnonzero(age > LOST_FRAMES / self.fps)
        if len(lost):  # a lost track's velocity may be stale: where it was last seen is a second guess
            where_seen = similarity_matrix(cfg.similarity, points, self._poses[lost], width[lost])
            similarity[:, lost] = np.maximum(similarity[:, lost], where_seen)
        known = np.isfinite(self._poses[..., 0])  # (T, N) nodes each track has seen
        shared = (np.isfinite(points[:, None, :, 0]) & known[None]).sum(axis=-1)  # (M, T)
        completeness = shared / np.maximum(known.sum(axis=-1), 1)[None]
        return similarity, similarity * completeness * (base / width)[None]

    def _stage(
        self,
        similarity: np.ndarray,
        preference: np.ndarray,
        detections: np.ndarray,
        tracks: np.ndarray,
        free: tuple[np.ndarray, np.ndarray],
    ) -> list[tuple[int, int]]:
        """Gated matching of some detections to some tracks (boolean masks); marks the pairs' detections and
        tracks as no longer ``free``. Pairs in the full matrix's indices."""
        rows, cols = np.flatnonzero(detections), np.flatnonzero(tracks)
        if not len(rows) or not len(cols):
            return []
        found = match(
            similarity[np.ix_(rows, cols)],
            self.config.min_similarity,
            self.config.match,
            preference[np.ix_(rows, cols)],
        )
        pairs = [(int(rows[r]), int(cols[c])) for r, c in found]
        for d, t in pairs:
            free[0][d] = free[1][t] = False
        return pairs

    def _by_count(
        self,
        points: np.ndarray,
        starters: list[int],
        pairs: list[tuple[int, int]],
        predicted: np.ndarray,
        since: np.ndarray,
    ) -> list[tuple[int, int]]:
        """At max_tracks, unmatched confident instances beyond the room for new tracks take the identities
        lost for longer than max_age, nearest first (by the closer of predicted and last observed centroid).
        An identity lost for less is only continued through the gated similarity, whose kernel widens with
        the time lost: a detection far from where its animal could be by now (a false one, while the
        animal is hidden) never takes it."""
        extra = starters[self._room() :]
        taken = {t for _, t in pairs}
        spare = [t for t in np.flatnonzero(since > self.config.max_age).tolist() if t not in taken]
        if self.config.max_tracks is None or not extra or not spare:
            return []
        here = centroids(points[extra])[:, None]  # (E, 1, 2)
        # (E, S)
        distance = np.minimum(
            np.linalg.norm(here - centroids(predicted[spare])[None], axis=-1),
            np.linalg.norm(here - centroids(self._poses[spare])[None], axis=-1),
        )
        closeness = 1.0 / (1.0 + np.nan_to_num(distance, nan=np.inf))
        return [(extra[r], spare[c]) for r, c in match(closeness, 0.0, "hungarian")]

    def _room(self) -> int:
        """How many new identities may still start."""
        limit = self.config.max_tracks
        return 10**9 if limit is None else max(limit - len(self._ids), 0)

    # -- track state ----------------------------------------------------------

    def _predicted(self, dt: np.ndarray) -> np.ndarray:
        """Each track's pose template moved by its predicted centroid shift after ``dt`` (T,) s.  # (T, N,
        2)"""
        return self._poses + self._motion.predict_shift(dt)[:, None, :]

    def _observe(self, rows: np.ndarray, points: np.ndarray, now: float) -> None:
        """Tracks ``rows`` (K,) seen again as ``points`` (K, N, 2): update template, scale, motion, time."""
        shift, scales, seen = templates.observe(self._poses, rows, points, self.config.min_scale)
        # a fragment says little of motion
        self._motion.observe(rows, shift, now - self._seen[rows], scales, seen)
        self._scales[rows], self._seen[rows] = scales, now

    def _restart(self, rows: np.ndarray, points: np.ndarray, now: float) -> None:
        """Identities ``rows`` (K,) re-used by count for ``points`` (K, N, 2): the track starts again there,
        standing still (the jump from where it was lost says nothing of its motion)."""
        scales = scale_of(points, self.config.min_scale)
        self._motion.restart(rows, centroids(points), scales)
        self._poses[rows], self._scales[rows], self._seen[rows] = points, scales, now

    def _start(self, points: np.ndarray, now: float) -> np.ndarray:
        """New tracks for ``points`` (K, N, 2); returns their ids (K,)."""
        k = len(points)
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        scales = scale_of(points, self.config.min_scale)
        self._motion.add(centroids(points), scales)
        self._ids = np.concatenate([self._ids, ids])
        self._poses = np.concatenate([self._poses, points])
        self._scales = np.concatenate([self._scales, scales])
        self._seen = np.concatenate([self._seen, np.full(k, now)])
        return ids.astype(np.int32)

    def _forget(self, now: float) -> None:
        """Drop tracks lost for longer than max_age (never with max_tracks: identities are kept)."""
        if self.config.max_tracks is not None:
            return
        keep = now - self._seen <= self.config.max_age
        if not keep.all():
            self._ids, self._poses, self._scales, self._seen = (
                self._ids[keep],
                self._poses[keep],
                self._scales[keep],
                self._seen[keep],
            )
            self._motion.keep(keep)
