"""Bottom-up grouping: join node peaks into animals using part affinity fields.

For each skeleton edge (a, b), every pair of peak candidates is scored by the
line integral of the edge's PAF along the segment between them: the field is
sampled at ``n_samples`` points of the segment (``pair_dots``: the dot product
of the field with the segment's direction at each sample), then the pair's
score is the samples' mean, penalised when the segment is longer than
``max_edge_length``; a pair connects when enough samples agree with the field
(``pair_scores``). Segments join the candidates' cells (unrefined positions),
so a ``peaks`` graph, which samples the field on the device, and the CPU path
score pairs identically. Pairs are matched greedily per edge (best score first,
each peak used once), then connections are assembled into instances edge by
edge, merging partial instances that meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .peaks import PeakCandidates

N_PAF_SAMPLES = 10
"""Points sampled along each candidate segment (also the size of a ``peaks`` graph's last PAF axis)."""


@dataclass(frozen=True)
class GroupingConfig:
    min_sample_score: float = 0.05  # a sample agrees when its dot product exceeds this
    min_agreeing_fraction: float = 0.8  # share of samples that must agree for a connection
    max_edge_length: float = 128.0  # pixels; longer segments are penalised
    min_instance_nodes: int = 2  # drop instances with fewer nodes
    max_instances: int = 16


def pair_dots(candidates: PeakCandidates, pafs: np.ndarray, edges: np.ndarray, paf_stride: int,
              n_samples: int = N_PAF_SAMPLES) -> np.ndarray:  # fmt: skip
    """PAF samples along every candidate pair of every edge.

    pafs: (B, 2 * E, Hp, Wp), x and y of edge e in channels 2e and 2e + 1; edges: (E, 2).
    Returns (B, E, K, K, n_samples): for edge (a, b), [.., i, j, s] is the field's dot product
    with the unit vector from candidate i of node a to candidate j of node b, at sample s
    (the nearest PAF cell to the point a fraction s / (n_samples - 1) of the way).
    """
    points = candidates.cell_points()  # (B, C, K, 2)
    batch, _, k, _ = points.shape
    dots = np.empty((batch, len(edges), k, k, n_samples), np.float32)
    t = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)
    _pair_dots_kernel(points, np.ascontiguousarray(pafs, dtype=np.float32), np.asarray(edges, np.int64),
                      np.float32(paf_stride), t, dots)  # fmt: skip
    return dots


@numba.njit(cache=True, nogil=True)
def _pair_dots_kernel(points, pafs, edges, paf_stride, t, dots):  # pragma: no cover - compiled
    batch, n_edges, k, _, n_samples = dots.shape
    height, width = pafs.shape[2], pafs.shape[3]
    tiny = np.float32(1e-6)
    for b in range(batch):
        for e in range(n_edges):
            a, z = edges[e, 0], edges[e, 1]
            for i in range(k):
                sx, sy = points[b, a, i, 0], points[b, a, i, 1]
                for j in range(k):
                    dx, dy = points[b, z, j, 0] - sx, points[b, z, j, 1] - sy
                    length = max(np.sqrt(dx * dx + dy * dy), tiny)
                    ux, uy = dx / length, dy / length
                    for s in range(n_samples):
                        col = min(max(np.rint((sx + t[s] * dx) / paf_stride), 0), width - 1)
                        row = min(max(np.rint((sy + t[s] * dy) / paf_stride), 0), height - 1)
                        r, q = int(row), int(col)
                        dots[b, e, i, j, s] = pafs[b, 2 * e, r, q] * ux + pafs[b, 2 * e + 1, r, q] * uy


def pair_scores(dots: np.ndarray, src: np.ndarray, dst: np.ndarray, cfg: GroupingConfig) -> np.ndarray:
    """Connection scores (Ka, Kb) of one edge from its samples ``dots`` (Ka, Kb, S); -inf where the
    pair does not connect. src (Ka, 2), dst (Kb, 2): the candidates' cell points, NaN if absent."""
    length = np.linalg.norm(dst[None, :, :] - src[:, None, :], axis=-1)  # (Ka, Kb)
    with np.errstate(invalid="ignore", divide="ignore"):
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
    points: np.ndarray, point_scores: np.ndarray, cells: np.ndarray, dots: np.ndarray, edges: np.ndarray,
    cfg: GroupingConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Assemble one frame's instances from its peak candidates.

    points: (C, K, 2) refined candidates, NaN where absent; point_scores: (C, K);
    cells: (C, K, 2) the candidates' cell points; dots: (E, K, K, S) from ``pair_dots``.
    Returns points (N, n_nodes, 2) with NaN, point scores (N, n_nodes), instance scores (N,),
    the best ``max_instances`` by score.
    """
    n_nodes = len(points)
    present = ~np.isnan(points[..., 0])  # (C, K)
    members: list[np.ndarray] = []  # per instance: candidate index per node, -1 if none
    owner = [dict() for _ in range(n_nodes)]  # node -> {candidate index: instance}
    edge_total: list[float] = []
    for e, (a, b) in enumerate(edges):
        src = np.where(present[a, :, None], cells[a], np.nan)
        dst = np.where(present[b, :, None], cells[b], np.nan)
        for pa, pb, score in greedy_match(pair_scores(dots[e], src, dst, cfg)):
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
    return _to_arrays(members, edge_total, points, point_scores, len(edges), cfg)


def _merge(members: list[np.ndarray], owner: list[dict], edge_total: list[float], keep: int, gone: int) -> int:
    taken = members[gone] >= 0
    members[keep][taken] = members[gone][taken]
    for node in np.flatnonzero(taken):
        owner[node][int(members[gone][node])] = keep
    edge_total[keep] += edge_total[gone]
    members[gone][:] = -1
    edge_total[gone] = -np.inf
    return keep


def _to_arrays(members, edge_total, candidates, candidate_scores, n_edges, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_nodes = len(candidates)
    kept = [(m, s) for m, s in zip(members, edge_total) if np.isfinite(s) and (m >= 0).sum() >= cfg.min_instance_nodes]
    kept.sort(key=lambda item: -item[1])
    kept = kept[: cfg.max_instances]
    points = np.full((len(kept), n_nodes, 2), np.nan, np.float32)
    scores = np.full((len(kept), n_nodes), np.nan, np.float32)
    for k, (member, _) in enumerate(kept):
        for node in np.flatnonzero(member >= 0):
            points[k, node] = candidates[node, member[node]]
            scores[k, node] = candidate_scores[node, member[node]]
    instance_scores = np.array([s / max(n_edges, 1) for _, s in kept], np.float32)
    return points, scores, instance_scores
