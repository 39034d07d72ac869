"""Detection-to-track assignment with a similarity gate: Hungarian (scipy) or greedy.

A pair below the gate is never made, so a far detection is never forced onto a track: it stays
unmatched (and may start a track of its own).
"""

from __future__ import annotations

import numpy as np


def match(
    similarity: np.ndarray, min_similarity: float, method: str, preference: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Pairs (detection row, track column) of ``similarity`` (M, T), each row and column used at most once.

    Pairs below ``min_similarity`` are never made; among the others, the assignment maximizes
    ``preference`` (M, T) (default: the similarity itself).
    """
    if similarity.size == 0:
        return []
    preference = similarity if preference is None else preference
    allowed = np.where(similarity >= min_similarity, np.maximum(preference, 0.0), -1.0)
    if method == "greedy":
        return greedy(allowed)
    return hungarian(allowed)


def hungarian(allowed: np.ndarray) -> list[tuple[int, int]]:
    """The assignment of greatest total preference among the allowed pairs (those >= 0)."""
    rows, cols = best_assignment(np.maximum(allowed, 0.0))
    keep = allowed[rows, cols] >= 0
    return list(zip(rows[keep].tolist(), cols[keep].tolist()))


def best_assignment(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one pairing of greatest total score (Hungarian, scipy).  scores (R, C)

    scipy.optimize is imported here, on first use: importing it adds about 50 MB of resident memory and
    0.3 s of start-up, which runs without tracking or identities never need."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(scores, maximize=True)


def greedy(allowed: np.ndarray) -> list[tuple[int, int]]:
    """The most preferred allowed pair (>= 0) first, then the most preferred of what is left."""
    order = np.argsort(-allowed, axis=None, kind="stable")
    rows, cols = np.unravel_index(order, allowed.shape)
    used_rows, used_cols, pairs = set(), set(), []
    for r, c in zip(rows.tolist(), cols.tolist()):
        if allowed[r, c] < 0:
            break
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs
