"""Top-K per batch and the merge into a global top-K per list; seeds are never returned.

Users are ordered by score (descending), ties by user id (ascending): a total order, so the
top-K of the union of every batch's top-K is exactly the global top-K, whatever the batches.
This is what lets Ray Data score batches on many actors and a single process agree row by row.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best k finite scores, ordered by (-score, id)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > k:
        s = scores[finite]
        kth = np.partition(s, len(s) - k)[len(s) - k]
        finite = finite[s >= kth]
    order = np.lexsort((ids[finite], -scores[finite]))[:k]
    return finite[order]


def exclude_seeds(scores: np.ndarray, batch_ids: np.ndarray, seed_list: np.ndarray, seed_user: np.ndarray) -> None:
    """Set scores[l, b] = -inf where batch user b is a seed of list l (in place).

    ``seed_list`` / ``seed_user`` are the (list position, user id) pairs of every list's seeds.
    """
    if len(seed_user) == 0 or len(batch_ids) == 0:
        return
    order = np.argsort(batch_ids, kind="stable")
    sorted_ids = batch_ids[order]
    at = np.minimum(np.searchsorted(sorted_ids, seed_user), len(sorted_ids) - 1)
    hit = sorted_ids[at] == seed_user
    scores[seed_list[hit], order[at[hit]]] = -np.inf


def batch_top_k(scores: np.ndarray, batch_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each list's top-k of one batch as flat (list position, user id, score) arrays."""
    lists, users, vals = [], [], []
    for row in range(scores.shape[0]):
        pos = top_k(scores[row], batch_ids, k)
        lists.append(np.full(len(pos), row, dtype=np.int64))
        users.append(batch_ids[pos])
        vals.append(scores[row, pos])
    if not lists:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    return np.concatenate(lists), np.concatenate(users).astype(np.int64), np.concatenate(vals).astype(np.float64)


def merge_top_k(
    list_pos: np.ndarray, user_ids: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global top-k per list from the union of per-batch top-k rows; sorted by list, then rank."""
    order = np.lexsort((user_ids, -scores, list_pos))
    list_pos, user_ids, scores = list_pos[order], user_ids[order], scores[order]
    starts = np.flatnonzero(np.r_[True, list_pos[1:] != list_pos[:-1]]) if len(list_pos) else np.empty(0, np.int64)
    rank = np.arange(len(list_pos)) - np.repeat(starts, np.diff(np.r_[starts, len(list_pos)]))
    keep = rank < k
    return list_pos[keep], user_ids[keep], scores[keep]
