"""The blend of region density and the affinity classifier (the paper's ensemble).

Given each method's top list (best first, ``depth`` times the audience size K long): the users
in both lists come first, ordered by the sum of their two ranks weighted by ``share`` (density)
and ``1 - share`` (classifier); the rest of the audience interleaves the density-only and
classifier-only users, each in its own method's order, taking ``share`` of the places from
density. The share is set per seed-list size bucket (density and
the classifier are not equally good on small and large lists). When one side runs out the other
fills the audience. With depth 1 this is the paper's blend of two top-K lists; a larger depth
lets users both methods rank fairly high (but neither in its top K) come before users only one
method likes. The blend is an ordering: its score is the position score ``(K - rank + 1) / K``.
"""

from __future__ import annotations

import math

import numpy as np

from reco.expansion.config import BlendConfig, SizeBuckets

SOURCES = ("both", "density", "classifier")


def density_share(cfg: BlendConfig, buckets: SizeBuckets, n_seeds: int) -> float:
    return float(getattr(cfg.density_share, buckets.of(n_seeds)))


def top_depth(cfg: BlendConfig, k: int) -> int:
    """How long each method's top list is for an audience of k."""
    return int(math.ceil(cfg.depth * k))


def blend(density_top: np.ndarray, classifier_top: np.ndarray, k: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, source codes 0 both / 1 density / 2 classifier) of the blended top-k.

    ``density_top`` / ``classifier_top`` (distinct ids, best first) may be longer than k (see
    ``top_depth``). Array operations only: a served expansion blends two 2,000-long lists, a
    cost Python dictionaries and loops would add to every request.
    """
    d = np.asarray(density_top, np.int64)
    c = np.asarray(classifier_top, np.int64)
    common, d_rank, c_rank = np.intersect1d(d, c, assume_unique=True, return_indices=True)
    key = share * d_rank.astype(np.float64) + (1.0 - share) * c_rank.astype(np.float64)
    both = common[np.lexsort((common, np.minimum(d_rank, c_rank), key))][:k]
    rest, rest_src = interleave(d[~np.isin(d, common)], c[~np.isin(c, common)], k - len(both), share)
    return np.concatenate([both, rest]), np.concatenate([np.zeros(len(both), np.int8), rest_src])


def interleave(d_only: np.ndarray, c_only: np.ndarray, n: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Up to n ids alternating between the two lists, ``share`` of the places from density
    (place i is density's when ceil((i + 1) share) > ceil(i share)); once one list runs out
    the other fills the rest."""
    n = max(0, min(n, len(d_only) + len(c_only)))
    i = np.arange(n)
    want = np.ceil((i + 1) * share - 1e-12) > np.ceil(i * share - 1e-12)
    d_before = np.cumsum(want) - want
    c_before = i - d_before
    blocked = (want & (d_before >= len(d_only))) | (~want & (c_before >= len(c_only)))
    t = int(np.argmax(blocked)) if blocked.any() else n
    head = want[:t]
    n_d, n_c = int(head.sum()), t - int(head.sum())
    ids = np.empty(n, np.int64)
    src = np.empty(n, np.int8)
    ids[:t][head], ids[:t][~head] = d_only[:n_d], c_only[:n_c]
    src[:t] = np.where(head, 1, 2)
    if t < n:  # one list ran out: the other fills the rest, in its own order
        from_density = n_d < len(d_only)
        tail = d_only[n_d : n_d + n - t] if from_density else c_only[n_c : n_c + n - t]
        ids[t:], src[t:] = tail, 1 if from_density else 2
    return ids, src


def position_scores(n: int, k: int) -> np.ndarray:
    return (k - np.arange(n, dtype=np.float64)) / max(k, 1)
