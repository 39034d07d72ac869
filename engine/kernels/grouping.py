"""Loops of bottom-up grouping (``posestream.engine.model.paf_grouping`` calls them and says what they
compute): the part affinity field sampled along candidate pairs, and the assembly of instances from scored
connections."""

from __future__ import annotations

import numpy as np

from posestream.engine.kernels.jit import helper, kernel


@helper
def _edge_scores(
    points, cells, dots, a, z, min_sample, min_fraction, max_length
):  # pragma: no cover - compiled
    """Connection scores (K, K) of edge (a, z): the samples' mean, minus a penalty for segments longer
    than ``max_length``; -inf where a candidate is absent or too few samples agree with the field."""
    k, n_samples = dots.shape[0], dots.shape[2]
    scores = np.full((k, k), -np.inf, np.float64)
    for i in range(k):
        if np.isnan(points[a, i, 0]):
            continue
        for j in range(k):
            if np.isnan(points[z, j, 0]):
                continue
            dx, dy = cells[z, j, 0] - cells[a, i, 0], cells[z, j, 1] - cells[a, i, 1]
            length = np.sqrt(dx * dx + dy * dy)
            if length == 0.0:
                continue
            total, agreeing = 0.0, 0
            for s in range(n_samples):
                total += dots[i, j, s]
                agreeing += dots[i, j, s] > min_sample
            score = total / n_samples + min(0.0, max_length / length - 1.0)
            if agreeing / n_samples >= min_fraction and score > 0.0:
                scores[i, j] = score
    return scores


@helper
def _greedy_matches(scores):  # pragma: no cover - compiled
    """Best-first one-to-one matching of a (K, K) score matrix: list of (i, j, score); -inf never matches.
    Equal scores keep row-major order."""
    k = scores.shape[1]
    flat = scores.ravel()
    order = np.argsort(-flat, kind="mergesort")
    used_a = np.zeros(scores.shape[0], np.bool_)
    used_z = np.zeros(k, np.bool_)
    matches = []
    for index in order:
        score = flat[index]
        if score == -np.inf:
            break
        i, j = index // k, index % k
        if used_a[i] or used_z[j]:
            continue
        used_a[i] = True
        used_z[j] = True
        matches.append((i, j, score))
    return matches


@helper
def _connect(members, owner, totals, n_groups, a, z, pa, pz, score):  # pragma: no cover - compiled
    """Add connection (node a, candidate pa) - (node z, candidate pz) to the instances; returns their count.

    A connection opens an instance, extends the one holding either end, or merges two instances
    that hold no node in common; it is dropped when the instance already has another candidate
    for one of the two nodes.
    """
    ga, gz = owner[a, pa], owner[z, pz]
    if ga < 0 and gz < 0:
        ga = gz = n_groups
        n_groups += 1
    elif ga < 0:
        ga = gz
    elif gz < 0:
        gz = ga
    elif ga != gz:
        for node in range(members.shape[1]):
            if members[ga, node] >= 0 and members[gz, node] >= 0:
                return n_groups  # both halves already hold a node in common: keep them apart
        for node in range(members.shape[1]):
            if members[gz, node] >= 0:
                members[ga, node] = members[gz, node]
                owner[node, members[gz, node]] = ga
                members[gz, node] = -1
        totals[ga] += totals[gz]
        totals[gz] = -np.inf
    if (members[ga, a] >= 0 and members[ga, a] != pa) or (members[ga, z] >= 0 and members[ga, z] != pz):
        return n_groups  # the instance already has another peak for one of these nodes
    members[ga, a], members[ga, z] = pa, pz
    owner[a, pa], owner[z, pz] = ga, ga
    totals[ga] += score
    return n_groups


@helper
def _write_instances(
    members,
    totals,
    n_groups,
    points,
    point_scores,
    n_edges,
    min_nodes,
    out_points,
    out_scores,
    out_instance_scores,
    counts,
    b,
):  # pragma: no cover
    """Copy the best instances (by total, ties by creation order) with at least ``min_nodes`` nodes."""
    n_nodes = members.shape[1]
    keys = np.full(n_groups, np.inf)
    for g in range(n_groups):
        size = 0
        for node in range(n_nodes):
            size += members[g, node] >= 0
        if totals[g] > -np.inf and size >= min_nodes:
            keys[g] = -totals[g]
    order = np.argsort(keys, kind="mergesort")
    count = 0
    for g in order:
        if count == out_points.shape[0] or keys[g] == np.inf:
            break
        for node in range(n_nodes):
            c = members[g, node]
            if c >= 0:
                out_points[count, node, 0] = points[node, c, 0]
                out_points[count, node, 1] = points[node, c, 1]
                out_scores[count, node] = point_scores[node, c]
        out_instance_scores[count] = totals[g] / max(n_edges, 1)
        count += 1
    counts[b] = count


@kernel
def pair_dots(points, present, pafs, edges, paf_stride, t, dots):  # pragma: no cover - compiled
    """In place: dots (B, E, K, K, S), the field along every candidate pair of every edge (see
    ``posestream.engine.model.paf_grouping.pair_dots``)."""
    batch, n_edges, k, _, n_samples = dots.shape
    height, width = pafs.shape[2], pafs.shape[3]
    tiny = np.float32(1e-6)
    for b in range(batch):
        for e in range(n_edges):
            a, z = edges[e, 0], edges[e, 1]
            for i in range(k):
                sx, sy = points[b, a, i, 0], points[b, a, i, 1]
                for j in range(k):
                    if not (present[b, a, i] and present[b, z, j]):
                        dots[b, e, i, j, :] = np.nan
                        continue
                    dx, dy = points[b, z, j, 0] - sx, points[b, z, j, 1] - sy
                    length = max(np.sqrt(dx * dx + dy * dy), tiny)
                    ux, uy = dx / length, dy / length
                    for s in range(n_samples):
                        col = min(max(np.rint((sx + t[s] * dx) / paf_stride), 0), width - 1)
                        row = min(max(np.rint((sy + t[s] * dy) / paf_stride), 0), height - 1)
                        r, q = int(row), int(col)
                        dots[b, e, i, j, s] = pafs[b, 2 * e, r, q] * ux + pafs[b, 2 * e + 1, r, q] * uy


@kernel
def group(
    points,
    point_scores,
    cells,
    dots,
    edges,
    min_sample,
    min_fraction,
    max_length,
    min_nodes,
    out_points,
    out_scores,
    out_instance_scores,
    counts,
):  # pragma: no cover - compiled
    """In place: each frame's instances, best first (see
    ``posestream.engine.model.paf_grouping.group_batch``)."""
    batch, n_nodes, k = point_scores.shape
    n_edges = edges.shape[0]
    n_groups_max = n_edges * k + 1  # each connection opens at most one instance
    for b in range(batch):
        members = np.full((n_groups_max, n_nodes), -1, np.int64)  # candidate index per node, -1 if none
        owner = np.full((n_nodes, k), -1, np.int64)  # instance holding each candidate, -1 if none
        totals = np.zeros(n_groups_max, np.float64)  # sum of connection scores; -inf once merged away
        n_groups = 0
        for e in range(n_edges):
            a, z = edges[e, 0], edges[e, 1]
            scores = _edge_scores(points[b], cells[b], dots[b, e], a, z, min_sample, min_fraction, max_length)
            for pa, pz, score in _greedy_matches(scores):
                n_groups = _connect(members, owner, totals, n_groups, a, z, pa, pz, score)
        _write_instances(
            members,
            totals,
            n_groups,
            points[b],
            point_scores[b],
            n_edges,
            min_nodes,
            out_points[b],
            out_scores[b],
            out_instance_scores[b],
            counts,
            b,
        )
