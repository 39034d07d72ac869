"""Bottom-up grouping: join node peaks into animals using part affinity fields.

For each skeleton edge (a, b), every pair of candidate peaks is scored by the
line integral of the edge's PAF along the segment between them: the mean dot
product of the field with the segment's direction, penalised when the
segment is longer than ``max_edge_length``. A pair connects when enough of
its samples agree with the field. Pairs are matched greedily per edge (best
score first, each peak used once), then connections are assembled into
instances edge by edge, merging partial instances that meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupingConfig:
    n_samples: int = 10  # points sampled along each candidate segment
    min_sample_score: float = 0.05  # a sample agrees when its dot product exceeds this
    min_agreeing_fraction: float = 0.8  # share of samples that must agree for a connection
    max_edge_length: float = 128.0  # pixels; longer segments are penalised
    min_instance_nodes: int = 2  # drop instances with fewer nodes
    max_instances: int = 16


def edge_scores(src: np.ndarray, dst: np.ndarray, paf: np.ndarray, stride: int, cfg: GroupingConfig) -> np.ndarray:
    """PAF line scores of all (src, dst) pairs; -inf where they do not connect.

    src: (Na, 2), dst: (Nb, 2) in input pixels; paf: (2, H, W) for this edge. Returns (Na, Nb).
    """
    t = np.linspace(0.0, 1.0, cfg.n_samples, dtype=np.float32)[None, None, :, None]
    delta = dst[None, :, :] - src[:, None, :]  # (Na, Nb, 2)
    length = np.linalg.norm(delta, axis=-1)  # (Na, Nb)
    unit = delta / np.maximum(length, 1e-6)[..., None]
    samples = src[:, None, None, :] + t * delta[:, :, None, :]  # (Na, Nb, n, 2)
    height, width = paf.shape[1:]
    col = np.clip(np.rint(samples[..., 0] / stride).astype(np.int64), 0, width - 1)
    row = np.clip(np.rint(samples[..., 1] / stride).astype(np.int64), 0, height - 1)
    field = np.stack([paf[0][row, col], paf[1][row, col]], axis=-1)  # (Na, Nb, n, 2)
    dots = (field * unit[:, :, None, :]).sum(axis=-1)  # (Na, Nb, n)
    penalty = np.minimum(0.0, cfg.max_edge_length / np.maximum(length, 1e-6) - 1.0)
    scores = dots.mean(axis=-1) + penalty
    agree = (dots > cfg.min_sample_score).mean(axis=-1) >= cfg.min_agreeing_fraction
    return np.where(agree & (scores > 0) & (length > 0), scores, -np.inf)


def greedy_match(scores: np.ndarray) -> list[tuple[int, int, float]]:
    """Best-first one-to-one matching of a (Na, Nb) score matrix; -inf never matches."""
    order = np.argsort(-scores, axis=None)
    used_a, used_b, matches = set(), set(), []
    for flat in order:
        a, b = np.unravel_index(flat, scores.shape)
        score = scores[a, b]
        if not np.isfinite(score):
            break
        if a in used_a or b in used_b:
            continue
        used_a.add(a)
        used_b.add(b)
        matches.append((int(a), int(b), float(score)))
    return matches


def group_instances(
    peaks: list[np.ndarray], peak_scores: list[np.ndarray], pafs: np.ndarray, paf_stride: int,
    edges: np.ndarray, cfg: GroupingConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Assemble instances from one frame's peaks.

    peaks[n]: (K_n, 2) candidate points of node n; peak_scores[n]: (K_n,).
    pafs: (2 * n_edges, H, W); edges: (n_edges, 2).
    Returns points (N, n_nodes, 2) with NaN, point scores (N, n_nodes), instance scores (N,),
    the best ``max_instances`` by score.
    """
    n_nodes = len(peaks)
    members: list[np.ndarray] = []  # per instance: peak index per node, -1 if none
    owner = [dict() for _ in range(n_nodes)]  # node -> {peak index: instance}
    edge_total: list[float] = []
    for e, (a, b) in enumerate(edges):
        if len(peaks[a]) == 0 or len(peaks[b]) == 0:
            continue
        scores = edge_scores(peaks[a], peaks[b], pafs[2 * e : 2 * e + 2], paf_stride, cfg)
        for pa, pb, score in greedy_match(scores):
            ia, ib = owner[a].get(pa), owner[b].get(pb)
            if ia is None and ib is None:
                members.append(np.full(n_nodes, -1))
                edge_total.append(0.0)
                ia = ib = len(members) - 1
            elif ia is None:
                ia = ib
            elif ib is None:
                ib = ia
            elif ia != ib:
                if np.any((members[ia] >= 0) & (members[ib] >= 0)):
                    continue  # both halves already hold a node in common: keep them apart
                ia = _merge(members, owner, edge_total, keep=ia, gone=ib)
                ib = ia
            if members[ia][a] not in (-1, pa) or members[ia][b] not in (-1, pb):
                continue  # the instance already has another peak for one of these nodes
            members[ia][a], members[ia][b] = pa, pb
            owner[a][pa], owner[b][pb] = ia, ia
            edge_total[ia] += score
    return _to_arrays(members, edge_total, peaks, peak_scores, len(edges), cfg)


def _merge(members: list[np.ndarray], owner: list[dict], edge_total: list[float], keep: int, gone: int) -> int:
    taken = members[gone] >= 0
    members[keep][taken] = members[gone][taken]
    for node in np.flatnonzero(taken):
        owner[node][int(members[gone][node])] = keep
    edge_total[keep] += edge_total[gone]
    members[gone][:] = -1
    edge_total[gone] = -np.inf
    return keep


def _to_arrays(members, edge_total, peaks, peak_scores, n_edges, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_nodes = len(peaks)
    kept = [(m, s) for m, s in zip(members, edge_total) if np.isfinite(s) and (m >= 0).sum() >= cfg.min_instance_nodes]
    kept.sort(key=lambda item: -item[1])
    kept = kept[: cfg.max_instances]
    points = np.full((len(kept), n_nodes, 2), np.nan, np.float32)
    scores = np.full((len(kept), n_nodes), np.nan, np.float32)
    for k, (member, _) in enumerate(kept):
        for node in np.flatnonzero(member >= 0):
            points[k, node] = peaks[node][member[node]]
            scores[k, node] = peak_scores[node][member[node]]
    instance_scores = np.array([s / max(n_edges, 1) for _, s in kept], np.float32)
    return points, scores, instance_scores
