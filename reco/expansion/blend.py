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

    ``density_top`` / ``classifier_top`` may be longer than k (see ``top_depth``).
    """
    d_rank = {int(u): r for r, u in enumerate(density_top)}
    c_rank = {int(u): r for r, u in enumerate(classifier_top)}
    both = [u for u in d_rank if u in c_rank]
    both.sort(key=lambda u: (share * d_rank[u] + (1.0 - share) * c_rank[u], min(d_rank[u], c_rank[u]), u))
    ids, src = both[:k], [0] * min(len(both), k)
    d_only = [int(u) for u in density_top if int(u) not in c_rank]
    c_only = [int(u) for u in classifier_top if int(u) not in d_rank]
    di = ci = 0
    i = 0
    while len(ids) < k and (di < len(d_only) or ci < len(c_only)):
        want_density = math.ceil((i + 1) * share - 1e-12) > math.ceil(i * share - 1e-12)
        if (want_density and di < len(d_only)) or ci >= len(c_only):
            ids.append(d_only[di])
            src.append(1)
            di += 1
        else:
            ids.append(c_only[ci])
            src.append(2)
            ci += 1
        i += 1
    return np.asarray(ids, dtype=np.int64), np.asarray(src, dtype=np.int8)


def position_scores(n: int, k: int) -> np.ndarray:
    return (k - np.arange(n, dtype=np.float64)) / max(k, 1)
