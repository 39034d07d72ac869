"""Tracking metrics against ground truth with identities: CLEAR (MOTA, MOTP, identity switches),
identity (IDF1) and HOTA, computed by TrackEval (``pip install 'posestream[eval]'``).

TrackEval's metrics take, per frame, the true and predicted ids and a similarity between every pair;
ours is OKS (the same per-node standard deviation and ground-truth area as the pose metrics). A pair
counts as the same animal at OKS >= ``threshold`` (CLEAR and IDF1; 0.5 by default); HOTA averages
over thresholds 0.05-0.95 itself. MOTP is then the mean OKS of matched pairs.

Only tracked predictions (track id >= 0) are hypotheses: an instance the tracker left untracked claims
no identity, so it counts neither for nor against.

``identity_accuracy`` needs no TrackEval: for identity (multi-class) models, whose identities are named
after the labels' tracks, the share of matched animals given the right name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from posestream.engine.extras import require
from posestream.train.oks import OKS_STDDEV, oks_matrix

MATCH_THRESHOLD = 0.5


@dataclass
class TrackedFrame:
    """One frame: true poses (G, N, 2) and ids (G,); predicted poses (P, N, 2) and track ids (P,)."""

    truth: np.ndarray
    truth_ids: np.ndarray
    predicted: np.ndarray
    predicted_ids: np.ndarray


@dataclass
class TrackingReport:
    frames: int
    true_identities: int
    predicted_identities: int
    id_switches: int
    idf1: float
    mota: float
    motp: float  # mean OKS of matched pairs
    hota: float
    fragmentations: int
    mostly_tracked: int  # true identities tracked for at least 80% of their frames
    matched: int  # CLEAR true positives
    missed: int  # CLEAR false negatives
    false_positives: int
    oks_threshold: float

    def to_dict(self) -> dict:
        return asdict(self)


def tracking_metrics(
    frames: list[TrackedFrame], stddev: float = OKS_STDDEV, threshold: float = MATCH_THRESHOLD
) -> TrackingReport:
    """CLEAR, IDF1 and HOTA over a sequence of frames (in time order)."""
    metrics = require("trackeval.metrics", extra="eval", feature="tracking metrics (posestream evaluate)")
    data = _trackeval_sequence(frames, stddev)
    config = {"THRESHOLD": threshold, "PRINT_CONFIG": False}
    clear = metrics.CLEAR(config).eval_sequence(data)
    identity = metrics.Identity(config).eval_sequence(data)
    hota = metrics.HOTA().eval_sequence(data)
    return TrackingReport(
        frames=len(frames),
        true_identities=data["num_gt_ids"],
        predicted_identities=data["num_tracker_ids"],
        id_switches=int(clear["IDSW"]),
        idf1=float(identity["IDF1"]),
        mota=float(clear["MOTA"]),
        motp=float(clear["MOTP"]),
        hota=float(np.mean(hota["HOTA"])),
        fragmentations=int(clear["Frag"]),
        mostly_tracked=int(clear["MT"]),
        matched=int(clear["CLR_TP"]),
        missed=int(clear["CLR_FN"]),
        false_positives=int(clear["CLR_FP"]),
        oks_threshold=threshold,
    )


def _trackeval_sequence(frames: list[TrackedFrame], stddev: float) -> dict:
    """TrackEval's sequence data: ids renumbered 0..K-1 over the sequence, OKS per frame (G, P)."""
    true_index: dict[int, int] = {}
    predicted_index: dict[int, int] = {}
    gt_ids, tracker_ids, similarity = [], [], []
    for frame in frames:
        keep = frame.predicted_ids >= 0
        gt_ids.append(
            np.array([true_index.setdefault(int(i), len(true_index)) for i in frame.truth_ids], int)
        )
        tracker_ids.append(
            np.array(
                [predicted_index.setdefault(int(i), len(predicted_index)) for i in frame.predicted_ids[keep]],
                int,
            )
        )
        similarity.append(oks_matrix(frame.truth, frame.predicted[keep], stddev))
    return {
        "num_timesteps": len(frames),
        "num_gt_ids": len(true_index),
        "num_tracker_ids": len(predicted_index),
        "num_gt_dets": sum(len(i) for i in gt_ids),
        "num_tracker_dets": sum(len(i) for i in tracker_ids),
        "gt_ids": gt_ids,
        "tracker_ids": tracker_ids,
        "similarity_scores": similarity,
    }


@dataclass
class IdentityAccuracy:
    """Per instance: of the true animals matched to a prediction (OKS >= threshold, one-to-one per frame),
    how many the prediction names by their own track's name (an unnamed prediction is wrong)."""

    accuracy: float
    correct: int
    matched: int


def identity_accuracy(
    frames: list[TrackedFrame],
    truth_names: list[str],
    predicted_names: list[str],
    stddev: float = OKS_STDDEV,
    threshold: float = MATCH_THRESHOLD,
) -> IdentityAccuracy:
    """Names compared, not ids: ``truth_names[id]`` against ``predicted_names[id]`` for every matched pair."""
    from posestream.engine.tracking.matching import best_assignment

    correct = matched = 0
    for frame in frames:
        oks = oks_matrix(frame.truth, frame.predicted, stddev)  # (G, P)
        if not oks.size:
            continue
        rows, cols = best_assignment(oks)
        for g, p in zip(rows, cols):
            if oks[g, p] < threshold:
                continue
            matched += 1
            predicted = int(frame.predicted_ids[p])
            named = predicted_names[predicted] if 0 <= predicted < len(predicted_names) else None
            correct += named == truth_names[int(frame.truth_ids[g])]
    return IdentityAccuracy(correct / matched if matched else float("nan"), correct, matched)
