"""Pose accuracy metrics: OKS mAP / mAR (COCO-style), PCK, localisation error, missed and false instances.

OKS between a ground-truth instance g and a prediction p:
    OKS = mean over nodes visible in g of exp(-d^2 / (2 * area * (2 * stddev)^2))
with d the node's distance (a node the prediction misses scores 0), area the
bounding-box area of g's visible nodes, and stddev = 0.025 for every node (SLEAP's default).

mAP averages, over OKS thresholds 0.50, 0.55, ..., 0.95, the 101-point
interpolated average precision of predictions ranked by score, each matched
greedily to the unmatched ground truth of its frame with the highest OKS
(COCO's rule). mAR averages the recall at those thresholds.

Distances, PCK and the missed / false counts use one matching per frame:
pairs taken greedily by OKS, best first, while OKS > 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from posestream.train.oks import OKS_STDDEV, oks_matrix
from posestream.train.tracking_metrics import IdentityAccuracy, TrackingReport

OKS_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
PCK_THRESHOLDS = (1, 2, 3, 4, 5, 7, 10)  # pixels


@dataclass
class FrameEval:
    """One frame to evaluate: ground truth (G, n_nodes, 2), predictions (P, n_nodes, 2), scores (P,)."""

    truth: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray


@dataclass
class Report:
    n_frames: int
    n_truth: int
    n_predicted: int
    mAP: float
    mAR: float
    ap_by_threshold: dict[str, float]
    pck: dict[str, float]
    error_percentiles: dict[str, float]
    mean_error: float
    missed_instances: int
    false_instances: int
    matched_instances: int
    tracking: TrackingReport | None = None  # when both the truth and the predictions have identities
    # identity models: the share of matched animals named by their own track (tracking_metrics.py)
    identity: IdentityAccuracy | None = None
    notes: list[str] = field(default_factory=list)  # what was not measured, and why

    def to_dict(self) -> dict:
        """Every metric; the tracking ones (id_switches, idf1, mota, ...) at the top level too."""
        data = asdict(self)
        if self.tracking is not None:
            data.update(self.tracking.to_dict())
        if self.identity is not None:
            data["identity_accuracy"] = self.identity.accuracy
        return data


def _coco_matches(oks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Per prediction (in the given order of ``scores``), whether it is a true positive at ``threshold``."""
    matched_truth = np.zeros(oks.shape[0], bool)
    hits = np.zeros(oks.shape[1], bool)
    for p in np.argsort(-scores, kind="stable"):
        candidates = np.where(~matched_truth & (oks[:, p] >= threshold), oks[:, p], -1.0)
        if len(candidates) and candidates.max() >= threshold:
            g = int(candidates.argmax())
            matched_truth[g] = True
            hits[p] = True
    return hits


def _average_precision(scores: np.ndarray, hits: np.ndarray, n_truth: int) -> tuple[float, float]:
    """101-point interpolated AP and final recall."""
    if n_truth == 0:
        return float("nan"), float("nan")
    if len(scores) == 0:
        return 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_truth
    precision = tp / np.maximum(tp + fp, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(sampled.mean()), float(recall[-1])


def _one_to_one(oks: np.ndarray) -> list[tuple[int, int]]:
    pairs = []
    used_g, used_p = set(), set()
    for flat in np.argsort(-oks, axis=None):
        g, p = np.unravel_index(flat, oks.shape)
        if oks[g, p] <= 0:
            break
        if g not in used_g and p not in used_p:
            used_g.add(g)
            used_p.add(p)
            pairs.append((int(g), int(p)))
    return pairs


def evaluate(frames: list[FrameEval], stddev: float = OKS_STDDEV) -> Report:
    """Metrics over all frames."""
    oks = [oks_matrix(f.truth, f.predicted, stddev) for f in frames]
    n_truth = sum(len(f.truth) for f in frames)
    n_predicted = sum(len(f.predicted) for f in frames)
    all_scores = np.concatenate([f.scores for f in frames]) if frames else np.zeros(0)
    aps, recalls = {}, []
    for t in OKS_THRESHOLDS:
        hits = (
            np.concatenate([_coco_matches(o, f.scores, t) for o, f in zip(oks, frames)])
            if frames
            else np.zeros(0, bool)
        )
        ap, recall = _average_precision(all_scores, hits, n_truth)
        aps[f"{t:.2f}"] = ap
        recalls.append(recall)
    distances, matched = [], 0
    for o, f in zip(oks, frames):
        for g, p in _one_to_one(o):
            d = np.linalg.norm(f.truth[g] - f.predicted[p], axis=-1)
            visible = np.isfinite(f.truth[g]).all(axis=-1)
            distances.append(np.where(visible, d, np.nan)[visible])  # NaN: the prediction missed the node
            matched += 1
    dist = np.concatenate(distances) if distances else np.zeros(0)
    found = dist[np.isfinite(dist)]
    pck = {
        f"{t}px": float(np.mean(np.nan_to_num(dist, nan=np.inf) <= t)) if len(dist) else float("nan")
        for t in PCK_THRESHOLDS
    }
    percentiles = {
        f"p{q}": float(np.percentile(found, q)) if len(found) else float("nan") for q in (50, 90, 95)
    }
    return Report(
        n_frames=len(frames),
        n_truth=n_truth,
        n_predicted=n_predicted,
        mAP=float(np.nanmean(list(aps.values()))) if n_truth else float("nan"),
        mAR=float(np.nanmean(recalls)) if n_truth else float("nan"),
        ap_by_threshold=aps,
        pck=pck,
        error_percentiles=percentiles,
        mean_error=float(found.mean()) if len(found) else float("nan"),
        missed_instances=n_truth - matched,
        false_instances=n_predicted - matched,
        matched_instances=matched,
    )
