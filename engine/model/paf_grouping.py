"""Bottom-up grouping: join node peaks into animals using part affinity fields.

For each skeleton edge (a, b), every pair of peak candidates is scored by the
line integral of the edge's PAF along the segment between them: the field is
sampled at ``n_samples`` points of the segment (``pair_dots``: the dot product
of the field with the segment's direction at each sample), then the pair's
score is the samples' mean, penalised when the segment is longer than
``max_edge_length``; a pair connects when enough samples agree with the field
(``_edge_scores``). Segments join the candidates' cells (unrefined positions),
so a ``peaks`` graph, which samples the field on the device, and the CPU path
score pairs identically. Pairs are matched greedily per edge (best score
first, each peak used once; greedy rather than Hungarian: cheaper, and the same
when an edge's best pairs do not compete), then connections are assembled into
instances edge by edge, merging partial instances that meet. All of it is one compiled kernel per batch
(``group_batch``; see ``posestream.engine.kernels``), so postprocessing threads run in parallel and no Python
runs per peak; ``tests/reference_postprocess.py`` holds the plain-Python
version the tests compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestream.engine import kernels
from posestream.engine.model.peaks import PeakCandidates

N_PAF_SAMPLES = 10
"""Points sampled along each candidate segment (also the size of a ``peaks`` graph's last PAF axis)."""


@dataclass(frozen=True)
class GroupingConfig:
    min_sample_score: float = 0.05  # a sample agrees when its dot product exceeds this
    min_agreeing_fraction: float = 0.8  # share of samples that must agree for a connection
    max_edge_length: float = 128.0  # pixels; longer segments are penalised
    min_instance_nodes: int = 2  # drop instances with fewer nodes
    max_instances: int = 16


def pair_dots(
    candidates: PeakCandidates,
    pafs: np.ndarray,
    edges: np.ndarray,
    paf_stride: int,
    n_samples: int = N_PAF_SAMPLES,
    floor: float = -np.inf,
) -> np.ndarray:
    """PAF samples along every candidate pair of every edge.

    pafs: (B, 2 * E, Hp, Wp), x and y of edge e in channels 2e and 2e + 1; edges: (E, 2).
    Returns (B, E, K, K, n_samples): for edge (a, b), [.., i, j, s] is the field's dot product
    with the unit vector from candidate i of node a to candidate j of node b, at sample s
    (the nearest PAF cell to the point a fraction s / (n_samples - 1) of the way). Pairs with a
    candidate not above ``floor`` are NaN: with the peak threshold as floor, grouping never reads them.
    """
    points = candidates.cell_points()  # (B, C, K, 2)
    batch, _, k, _ = points.shape
    dots = np.empty((batch, len(edges), k, k, n_samples), np.float32)
    t = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)
    kernels.load().pair_dots(
        points,
        np.ascontiguousarray(candidates.values > floor),
        np.ascontiguousarray(pafs, dtype=np.float32),
        np.ascontiguousarray(edges, np.int64),
        np.float32(paf_stride),
        t,
        dots,
    )
    return dots


def group_batch(
    points: np.ndarray,
    point_scores: np.ndarray,
    cells: np.ndarray,
    dots: np.ndarray,
    edges: np.ndarray,
    cfg: GroupingConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Assemble the instances of every frame of a batch from its peak candidates.

    points: (B, C, K, 2) refined candidates, NaN where absent; point_scores: (B, C, K);
    cells: (B, C, K, 2) the candidates' cell points; dots: (B, E, K, K, S) from ``pair_dots``.
    Returns, padded to ``M = cfg.max_instances``: points (B, M, C, 2) NaN-filled, point scores
    (B, M, C), instance scores (B, M) (mean connection score over the skeleton's edges), and the
    number of instances of each frame (B,), best first.
    """
    batch, n_nodes, k = point_scores.shape
    out_points = np.full((batch, cfg.max_instances, n_nodes, 2), np.nan, np.float32)
    out_scores = np.full((batch, cfg.max_instances, n_nodes), np.nan, np.float32)
    out_instance_scores = np.zeros((batch, cfg.max_instances), np.float32)
    counts = np.zeros(batch, np.int64)
    kernels.load().group(
        np.ascontiguousarray(points, np.float32),
        np.ascontiguousarray(point_scores, np.float32),
        np.ascontiguousarray(cells, np.float32),
        np.ascontiguousarray(dots, np.float32),
        np.ascontiguousarray(np.reshape(edges, (-1, 2)), np.int64),
        np.float32(cfg.min_sample_score),
        float(cfg.min_agreeing_fraction),
        float(cfg.max_edge_length),
        cfg.min_instance_nodes,
        out_points,
        out_scores,
        out_instance_scores,
        counts,
    )
    return out_points, out_scores, out_instance_scores, counts
