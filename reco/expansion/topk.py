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
    """Each list's top-k of one batch as flat (list position, user id, score) arrays, sorted by
    list, then (-score, id): per row the same users as :func:`top_k`, all rows at once.

    One partition of the whole (L, B) array finds every row's k-th best score; the users at or
    above it (ties included, -inf never) are then ordered with one sort, and each row cut at k.
    """
    n_rows, n = scores.shape
    ids = np.asarray(batch_ids)
    if n_rows == 0 or n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    keep = scores > -np.inf
    if n > k:
        keep &= scores >= kth_largest(scores, k)[:, None]
    rows, pos = np.nonzero(keep)
    vals = scores[rows, pos]
    users = ids[pos].astype(np.int64)
    order = np.lexsort((users, -vals, rows))
    rows, users, vals = rows[order], users[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    first = np.arange(len(rows)) - starts[rows] < k
    return rows[first].astype(np.int64), users[first], vals[first].astype(np.float64)


def kth_largest(scores: np.ndarray, k: int, stride: int = 8) -> np.ndarray:
    """(L,) each row's k-th largest score (k < row length), exactly.

    A partition of the whole row costs most of a batch's top-K, so a guess comes first: the
    k / stride-th largest of every stride-th score, with a margin, is a threshold that about
    1.3 k scores reach. Where at least k do, the k-th largest of those is the row's (every score
    at or above the row's k-th reaches the threshold); a row where fewer do (unlucky or
    adversarial order) is partitioned whole. Either way the result is exact.
    """
    n_rows, n = scores.shape
    if n < 16 * k or stride < 2:
        return np.partition(scores, n - k, axis=1)[:, n - k]
    sample = scores[:, ::stride]
    k_s = min(sample.shape[1], int(1.25 * k / stride) + 16)
    guess = np.partition(sample, sample.shape[1] - k_s, axis=1)[:, sample.shape[1] - k_s]
    out = np.empty(n_rows, scores.dtype)
    for row in range(n_rows):
        above = scores[row][scores[row] >= guess[row]]
        if len(above) >= k:
            out[row] = np.partition(above, len(above) - k)[len(above) - k]
        else:
            out[row] = np.partition(scores[row], n - k)[n - k]
    return out


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
