"""Seed lists for the evaluation, defined by a signal the embedding never saw.

- MovieLens: the users who rated movie m 4 or more; Last.fm: the listeners of artist a. The
  chosen topics are returned so ingest removes every interaction on them
  (``ingest.exclude_topics``) before the embedding is trained.
- Synthetic: the planted communities (members whose share of engagement in the community is at
  least ``min_share``): whole communities for the large bucket, random subsets of them for the
  medium and small buckets. The whole community is kept as each list's truth.

Topics and sizes are picked evenly across popularity inside each size bucket, so every bucket
is filled and spans its range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from reco.expansion.config import BUCKETS, SizeBuckets, SyntheticListsConfig

# data format -> (list id prefix, minimum interaction weight that makes a member): the signal that
# defines a list on each real data set (MovieLens: rated the movie 4 or more; Last.fm: listens to the artist)
TOPIC_LISTS: dict[str, tuple[str, float | None]] = {"movielens": ("movie:", 4.0), "lastfm": ("artist:", None)}


@dataclass(frozen=True)
class ListDefinitions:
    lists: dict[str, np.ndarray]  # list id -> member ids (raw for topics, dense for synthetic)
    exclude_topics: list[str] = field(default_factory=list)  # raw topic ids to remove before training
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # list id -> every true member (synthetic)


def spread(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of up to n items evenly spread over ``values`` sorted ascending."""
    if len(values) <= n:
        return np.arange(len(values))
    return np.unique(np.round(np.linspace(0, len(values) - 1, n)).astype(np.int64))


def topic_audiences(
    raw: pa.Table,
    buckets: SizeBuckets,
    per_bucket: int,
    min_size: int,
    prefix: str,
    min_weight: float | None = None,
    max_size: int | None = None,
) -> ListDefinitions:
    """Lists "users who engaged with topic t (weight >= min_weight)", ``per_bucket`` per size bucket.

    ``raw`` has string columns user and topic and a weight (reco.data.formats.RAW_SCHEMA).
    """
    df = raw.select(["user", "topic", "weight"]).to_pandas()
    if min_weight is not None:
        df = df[df["weight"] >= min_weight]
    members = df.drop_duplicates(["topic", "user"]).groupby("topic")["user"].agg(list)
    sizes = members.map(len)
    sizes = sizes[sizes >= min_size]
    if max_size is not None:
        sizes = sizes[sizes <= max_size]
    frame = pd.DataFrame({"topic": sizes.index.astype(str), "size": sizes.to_numpy()})
    frame["bucket"] = [buckets.of(int(s)) for s in frame["size"]]
    chosen: dict[str, np.ndarray] = {}
    for bucket in BUCKETS:
        part = frame[frame["bucket"] == bucket].sort_values(["size", "topic"]).reset_index(drop=True)
        for pos in spread(part["size"].to_numpy(), per_bucket):
            topic = part.loc[pos, "topic"]
            chosen[f"{prefix}{topic}"] = np.asarray(sorted(members[topic]), dtype=object)
    return ListDefinitions(chosen, exclude_topics=[k[len(prefix) :] for k in chosen])


def community_audiences(truth: pa.Table, buckets: SizeBuckets, cfg: SyntheticListsConfig) -> ListDefinitions:
    """Lists from planted communities (dense user ids): whole ones (large), sampled subsets (others)."""
    df = truth.to_pandas()
    df = df[df["share"] >= cfg.min_share]
    members = {int(c): np.sort(g["user_id"].to_numpy()) for c, g in df.groupby("community")}
    order = sorted(members, key=lambda c: (len(members[c]), c))
    rng = np.random.default_rng([cfg.seed, 0x5EED])
    lists: dict[str, np.ndarray] = {}
    truth_of: dict[str, np.ndarray] = {}
    large = [c for c in order if buckets.of(len(members[c])) == "large"]
    for pos in spread(np.array([len(members[c]) for c in large]), cfg.per_bucket):
        c = large[pos]
        lists[f"community:{c}"] = members[c]
        truth_of[f"community:{c}"] = members[c]
    ranges = {"small": (cfg.min_size, buckets.small_below - 1), "medium": (buckets.small_below, buckets.medium_up_to)}
    for bucket, (lo, hi) in ranges.items():
        sizes = np.round(np.linspace(lo, hi, cfg.per_bucket)).astype(np.int64) if cfg.per_bucket > 1 else np.array([lo])
        for i, size in enumerate(sizes):
            c = order[(i * 7 + len(lists)) % len(order)]
            size = int(min(size, len(members[c])))
            name = f"community:{c}/{bucket}-{i}"
            lists[name] = np.sort(rng.choice(members[c], size=size, replace=False))
            truth_of[name] = members[c]
    return ListDefinitions(lists, truth=truth_of)
