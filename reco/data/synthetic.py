"""Synthetic interactions with planted community structure: the embedded default data set.

Why planted structure: audience expansion can only be scored against a truth. Here each user
belongs to one to three interest communities, each topic to one community, and engagement mixes
community topics with noise, so "the users of community c" is a seed list whose true audience
is known.

- communities have Zipf-like sizes (a few large, many small), so seed lists span all sizes;
- a user's activity is log-normal (heavy-tailed: most users do little, a few do a lot);
- within a community, topic popularity is Zipf; noise interactions follow global popularity;
- timestamps increase along each user's history with exponential gaps.

Generation is chunked by users and deterministic by (seed, chunk): a Ray task can make any
chunk alone, so the same code makes 20,000 users on a laptop or millions on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from reco.data.config import SyntheticConfig

_BASE_TS = 1_600_000_000
_COMMUNITY_COUNT_PROBS = np.array([0.55, 0.3, 0.15, 0.07, 0.03])


@dataclass(frozen=True)
class World:
    """What is shared by all chunks: topics' communities and popularity."""

    community_topics: np.ndarray  # (C, m) topic ids of each community, most popular first
    community_weights: np.ndarray  # (C,) probability a user joins each community
    within_cdf: np.ndarray  # (m,) Zipf CDF over a community's topics
    global_order: np.ndarray  # (T,) topic ids, most popular first (noise interactions)
    global_cdf: np.ndarray  # (T,)


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(w) / w.sum()


def make_world(cfg: SyntheticConfig) -> World:
    rng = np.random.default_rng([cfg.seed, 7919])
    per_comm = cfg.n_topics // cfg.n_communities
    perm = rng.permutation(cfg.n_topics)
    community_topics = perm[: per_comm * cfg.n_communities].reshape(cfg.n_communities, per_comm)
    sizes = 1.0 / np.arange(1, cfg.n_communities + 1) ** 0.8
    return World(
        community_topics=community_topics,
        community_weights=sizes / sizes.sum(),
        within_cdf=_zipf_cdf(per_comm, 0.9),
        global_order=rng.permutation(cfg.n_topics),
        global_cdf=_zipf_cdf(cfg.n_topics, 0.8),
    )


def n_chunks(cfg: SyntheticConfig) -> int:
    return -(-cfg.n_users // cfg.users_per_chunk)


def chunk_users(cfg: SyntheticConfig, chunk: int) -> tuple[int, int]:
    start = chunk * cfg.users_per_chunk
    return start, min(cfg.n_users, start + cfg.users_per_chunk)


@dataclass(frozen=True)
class UserChunk:
    user_ids: np.ndarray  # (n,)
    communities: np.ndarray  # (n, M) community ids; -1 pads users with fewer
    mixture: np.ndarray  # (n, M) share of each community in the user's engagement (0 for pads)
    activity: np.ndarray  # (n,) interactions before de-duplication


def make_users(cfg: SyntheticConfig, world: World, chunk: int) -> UserChunk:
    start, stop = chunk_users(cfg, chunk)
    n = stop - start
    rng = np.random.default_rng([cfg.seed, chunk, 1])
    m = min(cfg.max_communities_per_user, cfg.n_communities)
    pk = _COMMUNITY_COUNT_PROBS[:m] / _COMMUNITY_COUNT_PROBS[:m].sum()
    k = rng.choice(np.arange(1, m + 1), p=pk, size=n)
    # k distinct communities per user, drawn by weight: Gumbel top-k.
    keys = np.log(world.community_weights)[None, :] + rng.gumbel(size=(n, cfg.n_communities))
    chosen = np.argsort(-keys, axis=1)[:, :m]
    present = np.arange(m)[None, :] < k[:, None]
    communities = np.where(present, chosen, -1)
    mix = rng.gamma(1.0, size=(n, m)) * present
    mix = mix / mix.sum(axis=1, keepdims=True)
    sigma = 1.0
    mu = np.log(cfg.mean_activity) - sigma**2 / 2
    activity = np.clip(np.round(rng.lognormal(mu, sigma, size=n)), 2, cfg.mean_activity * 40).astype(np.int64)
    return UserChunk(np.arange(start, stop, dtype=np.int64), communities, mix, activity)


def make_interactions(cfg: SyntheticConfig, world: World, users: UserChunk, chunk: int) -> pa.Table:
    """One chunk's interactions: user_id, topic_id, weight (1-5), ts; (user, topic) unique."""
    rng = np.random.default_rng([cfg.seed, chunk, 2])
    n = len(users.user_ids)
    row_user = np.repeat(np.arange(n), users.activity)
    total = len(row_user)
    # Which of the user's communities each interaction comes from.
    cum = np.cumsum(users.mixture, axis=1)[row_user]
    slot = np.minimum((rng.random(total)[:, None] > cum).sum(axis=1), users.mixture.shape[1] - 1)
    comm = users.communities[row_user, slot]
    rank = np.minimum(np.searchsorted(world.within_cdf, rng.random(total)), len(world.within_cdf) - 1)
    topic = world.community_topics[comm, rank]
    noise = rng.random(total) < cfg.noise
    g = np.minimum(np.searchsorted(world.global_cdf, rng.random(noise.sum())), len(world.global_cdf) - 1)
    topic[noise] = world.global_order[g]
    weight = np.where(noise, rng.integers(1, 4, total), rng.integers(2, 6, total)).astype(np.float32)
    gaps = rng.exponential(3600.0, total)
    seg_start = np.repeat(np.cumsum(users.activity) - users.activity, users.activity)
    cgaps = np.cumsum(gaps)
    offset = rng.integers(0, 365 * 86400, n)[row_user]
    ts = (_BASE_TS + offset + (cgaps - cgaps[seg_start] + gaps[seg_start])).astype(np.int64)
    # Repeats of a (user, topic) pair fold into one interaction: weights add, the first ts stays.
    key = row_user * cfg.n_topics + topic
    order = np.lexsort((ts, key))
    key, ts_sorted, w_sorted = key[order], ts[order], weight[order]
    first = np.r_[True, key[1:] != key[:-1]]
    starts = np.flatnonzero(first)
    w_sum = np.minimum(np.add.reduceat(w_sorted, starts), 5.0).astype(np.float32)
    uk = key[starts]
    return pa.table(
        {
            "user_id": users.user_ids[uk // cfg.n_topics],
            "topic_id": (uk % cfg.n_topics).astype(np.int64),
            "weight": w_sum,
            "ts": ts_sorted[starts],
        }
    )


def generate_chunk(cfg: SyntheticConfig, chunk: int, world: World | None = None) -> pa.Table:
    world = world or make_world(cfg)
    return make_interactions(cfg, world, make_users(cfg, world, chunk), chunk)


def memberships(cfg: SyntheticConfig, chunk: int, world: World | None = None) -> pa.Table:
    """Ground truth of one chunk: user_id, community, share (one row per membership)."""
    world = world or make_world(cfg)
    u = make_users(cfg, world, chunk)
    keep = u.communities >= 0
    return pa.table(
        {
            "user_id": np.broadcast_to(u.user_ids[:, None], keep.shape)[keep],
            "community": u.communities[keep].astype(np.int64),
            "share": u.mixture[keep].astype(np.float32),
        }
    )


def topic_table(cfg: SyntheticConfig, world: World | None = None) -> pa.Table:
    """topic_id, community (-1 for topics outside every community), name."""
    world = world or make_world(cfg)
    comm = np.full(cfg.n_topics, -1, dtype=np.int64)
    rank = np.zeros(cfg.n_topics, dtype=np.int64)
    for c, topics in enumerate(world.community_topics):
        comm[topics] = c
        rank[topics] = np.arange(len(topics))
    names = [
        f"community {c} / topic {r}" if c >= 0 else f"general topic {t}" for t, (c, r) in enumerate(zip(comm, rank))
    ]
    return pa.table({"topic_id": np.arange(cfg.n_topics, dtype=np.int64), "community": comm, "name": names})


def generate(cfg: SyntheticConfig) -> pa.Table:
    """All chunks in one process (tests and small benches; ingest uses Ray Data instead)."""
    world = make_world(cfg)
    return pa.concat_tables([generate_chunk(cfg, c, world) for c in range(n_chunks(cfg))])
