"""Pure-numpy reference of the engine's numba postprocessing kernels (peak candidates, refinement,
PAF samples, grouping), written the obvious way; the tests hold the engine to it."""

from __future__ import annotations

import numpy as np

from posestream.engine.model.paf_grouping import N_PAF_SAMPLES, GroupingConfig
from posestream.engine.model.peaks import NOT_A_PEAK, PeakCandidates


def find_candidates(maps: np.ndarray, k: int, stride: int) -> PeakCandidates:
    """Top-``k`` local maxima (3x3, ties kept) of each channel of maps (B, C, H, W)."""
    batch, channels, height, width = maps.shape
    maps = np.asarray(maps, np.float32)
    padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    shifted = [padded[:, :, di : di + height, dj : dj + width] for di in range(3) for dj in range(3)]
    ranked = np.where(maps >= np.max(shifted, axis=0), maps, np.float32(NOT_A_PEAK)).reshape(
        batch, channels, -1
    )
    k = min(k, height * width)
    best = np.argpartition(-ranked, k - 1, axis=2)[..., :k]  # (B, C, K), unordered
    order = np.argsort(-np.take_along_axis(ranked, best, axis=2), axis=2, kind="stable")
    flat = np.take_along_axis(best, order, axis=2)
    rows, cols = np.divmod(flat, width)
    zero_padded = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)))
    b = np.arange(batch)[:, None, None, None, None]
    c = np.arange(channels)[None, :, None, None, None]
    offsets = np.arange(3)
    patches = zero_padded[
        b, c, rows[..., None, None] + offsets[:, None], cols[..., None, None] + offsets[None, :]
    ]
    values = np.take_along_axis(ranked, flat, axis=2)
    return PeakCandidates(values, rows, cols, patches, (height, width), stride)


def refine_candidates(candidates: PeakCandidates, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Subpixel points (B, C, K, 2) in input pixels, NaN where the value is not above
    ``threshold``, and scores (B, C, K)."""
    p = candidates.patches
    centre, left, right, up, down = p[..., 1, 1], p[..., 1, 0], p[..., 1, 2], p[..., 0, 1], p[..., 2, 1]
    height, width = candidates.map_shape
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = 0.5 * (right - left) / (2 * centre - left - right)
        dy = 0.5 * (down - up) / (2 * centre - up - down)
    j, i = candidates.cols, candidates.rows
    dx = np.where(np.isfinite(dx) & (j > 0) & (j < width - 1), np.clip(dx, -0.5, 0.5), 0.0)
    dy = np.where(np.isfinite(dy) & (i > 0) & (i < height - 1), np.clip(dy, -0.5, 0.5), 0.0)
    points = np.stack([(j + dx) * candidates.stride, (i + dy) * candidates.stride], axis=-1).astype(
        np.float32
    )
    points[~(candidates.values > threshold)] = np.nan
    return points, candidates.values.astype(np.float32)


def pair_dots(
    candidates: PeakCandidates,
    pafs: np.ndarray,
    edges: np.ndarray,
    paf_stride: int,
    n_samples: int = N_PAF_SAMPLES,
) -> np.ndarray:
    """PAF samples along every candidate pair of every edge.

    pafs: (B, 2 * E, Hp, Wp), x and y of edge e in channels 2e and 2e + 1; edges: (E, 2).
    Returns (B, E, K, K, n_samples): for edge (a, b), [.., i, j, s] is the field's dot product
    with the unit vector from candidate i of node a to candidate j of node b, at sample s.
    """
    points = candidates.cell_points()  # (B, C, K, 2)
    src = points[:, edges[:, 0]][:, :, :, None, None, :]  # (B, E, K, 1, 1, 2)
    dst = points[:, edges[:, 1]][:, :, None, :, None, :]  # (B, E, 1, K, 1, 2)
    delta = dst - src  # (B, E, K, K, 1, 2)
    t = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)[:, None]  # (S, 1)
    samples = src + t * delta  # (B, E, K, K, S, 2)
    height, width = pafs.shape[2:]
    col = np.clip(np.rint(samples[..., 0] / paf_stride), 0, width - 1).astype(np.int64)
    row = np.clip(np.rint(samples[..., 1] / paf_stride), 0, height - 1).astype(np.int64)
    batch, n_edges = pafs.shape[0], len(edges)
    b = np.arange(batch)[:, None, None, None, None]
    e = np.arange(n_edges)[None, :, None, None, None]
    field_x, field_y = pafs[b, 2 * e, row, col], pafs[b, 2 * e + 1, row, col]  # (B, E, K, K, S)
    length = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)  # (B, E, K, K, 1)
    unit = delta / np.maximum(length, np.float32(1e-6))[..., None]
    return (field_x * unit[..., 0] + field_y * unit[..., 1]).astype(np.float32)


def pair_scores(dots: np.ndarray, src: np.ndarray, dst: np.ndarray, cfg: GroupingConfig) -> np.ndarray:
    """Connection scores (Ka, Kb) of one edge from its samples ``dots`` (Ka, Kb, S); -inf where the
    pair does not connect. src (Ka, 2), dst (Kb, 2): the candidates' cell points, NaN if absent."""
    length = np.linalg.norm(dst[None, :, :] - src[:, None, :], axis=-1).astype(np.float64)  # (Ka, Kb)
    with np.errstate(invalid="ignore", divide="ignore"):
        penalty = np.minimum(0.0, cfg.max_edge_length / length - 1.0)
    scores = dots.astype(np.float64).mean(axis=-1) + penalty
    agree = (dots > np.float32(cfg.min_sample_score)).mean(axis=-1) >= cfg.min_agreeing_fraction
    return np.where(agree & (scores > 0) & (length > 0), scores, -np.inf)


def greedy_match(scores: np.ndarray) -> list[tuple[int, int, float]]:
    """Best-first one-to-one matching of a (Ka, Kb) score matrix; -inf never matches; ties row-major."""
    order = np.argsort(-scores, axis=None, kind="stable")
    used_a, used_b, matches = set(), set(), []
    for flat in order:
        a, b = np.unravel_index(flat, scores.shape)
        if not np.isfinite(scores[a, b]):
            break
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            matches.append((int(a), int(b), float(scores[a, b])))
    return matches


def group_instances(points, point_scores, cells, dots, edges, cfg: GroupingConfig):
    """One frame's instances from its candidates: points (C, K, 2) NaN where absent, point_scores
    (C, K), cells (C, K, 2), dots (E, K, K, S). Returns points (N, C, 2), point scores (N, C) and
    instance scores (N,), best first, at most ``cfg.max_instances``."""
    n_nodes = len(points)
    present = ~np.isnan(points[..., 0])  # (C, K)
    members: list[dict[int, int]] = []  # per instance: node -> candidate
    totals: list[float] = []
    owner: dict[tuple[int, int], int] = {}  # (node, candidate) -> instance
    for e, (a, b) in enumerate(edges):
        src = np.where(present[a, :, None], cells[a], np.nan)
        dst = np.where(present[b, :, None], cells[b], np.nan)
        for pa, pb, score in greedy_match(pair_scores(dots[e], src, dst, cfg)):
            ia, ib = owner.get((a, pa)), owner.get((b, pb))
            if ia is None and ib is None:
                members.append({})
                totals.append(0.0)
                ia = ib = len(members) - 1
            ia, ib = (ib, ib) if ia is None else (ia, ia) if ib is None else (ia, ib)
            if ia != ib:
                if members[ia].keys() & members[ib].keys():
                    continue  # both halves hold a node in common: keep them apart
                for node, candidate in members[ib].items():
                    owner[(node, candidate)] = ia
                members[ia].update(members[ib])
                members[ib] = {}
                totals[ia] += totals[ib]
                totals[ib] = -np.inf
            if members[ia].get(a, pa) != pa or members[ia].get(b, pb) != pb:
                continue  # the instance already has another peak for one of these nodes
            members[ia][a], members[ia][b] = pa, pb
            owner[(a, pa)] = owner[(b, pb)] = ia
            totals[ia] += score
    kept = [
        i for i in range(len(members)) if np.isfinite(totals[i]) and len(members[i]) >= cfg.min_instance_nodes
    ]
    kept = sorted(kept, key=lambda i: -totals[i])[: cfg.max_instances]
    found = np.full((len(kept), n_nodes, 2), np.nan, np.float32)
    scores = np.full((len(kept), n_nodes), np.nan, np.float32)
    for n, i in enumerate(kept):
        for node, candidate in members[i].items():
            found[n, node], scores[n, node] = points[node, candidate], point_scores[node, candidate]
    instance_scores = np.array([totals[i] / max(len(edges), 1) for i in kept], np.float32)
    return found, scores, instance_scores
