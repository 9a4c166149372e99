"""The retrieval benchmark's data sets, read in this process and cut into protocols.

- ``ml-100k``: u.data read in place, dense ids, the per-user temporal 80/20 split
  (reco.retrieval.protocol.movielens_protocol), genre / decade item features and age / gender /
  occupation user features for the two-tower model.
- ``lastfm``: user_artists.dat, the spine's protocol (configs/lastfm.yaml): 392 users held out
  entirely, one random artist per user hidden.
- ``synthetic``: planted communities (reco.data.synthetic), the latest topic per user hidden, a
  fifth of the users held out entirely; each user's planted community count is the truth for
  the by-diversity breakdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from reco.data import synthetic
from reco.data.config import DataConfig, SyntheticConfig
from reco.data.formats import read_local, resolve_source
from reco.data.histories import build_histories, pick_test_users
from reco.retrieval.data import UserSequences
from reco.retrieval.features import features_for
from reco.retrieval.protocol import Protocol, holdout_protocol, movielens_protocol
from reco.vocab import count_ids, merge_counts

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class Dataset:
    protocol: Protocol
    label: str
    planted_communities: dict[int, int] | None = None  # synthetic: user -> planted community count


def _dense(raw: pa.Table) -> tuple[pa.Table, list[str], list[str]]:
    users, topics = merge_counts(count_ids(raw).to_pandas())
    table = pa.table(
        {
            "user_id": users.encode(raw.column("user")),
            "topic_id": topics.encode(raw.column("topic")),
            "weight": raw.column("weight"),
            "ts": raw.column("ts"),
        }
    )
    return table, users.raw_ids.to_pylist(), topics.raw_ids.to_pylist()


def movielens(path: Path = SHARED / "ml-100k" / "u.data") -> Dataset:
    cfg = DataConfig(format="movielens", path=str(path))
    table, user_raw, topic_raw = _dense(read_local(resolve_source(cfg)))
    seqs = UserSequences.from_interactions(
        *(table.column(c).to_numpy() for c in ("user_id", "topic_id", "ts", "weight"))
    )
    items, users = features_for("movielens", str(path), user_raw, topic_raw)
    p = movielens_protocol(seqs, len(topic_raw), len(user_raw), item_features=items, user_features=users)
    return Dataset(p, f"MovieLens 100K ({len(user_raw)} users, {len(topic_raw)} movies, {table.num_rows} ratings)")


def lastfm(path: Path = SHARED / "lastfm-2k" / "user_artists.dat", test_users: int = 392, seed: int = 0) -> Dataset:
    cfg = DataConfig(format="lastfm", path=str(path))
    table, user_raw, topic_raw = _dense(read_local(resolve_source(cfg)))
    test_ids = pick_test_users(len(user_raw), test_users, seed)
    hist = build_histories(table, 1, "random", test_ids, seed)
    p = holdout_protocol("lastfm", hist, len(topic_raw), len(user_raw))
    p.notes.append("Last.fm has no timestamps: sequence order within a user is arbitrary, recency has no meaning")
    p.notes.append(
        "no artist tags in the shared data (user_taggedartists.dat absent): the two-tower item tower is ids only"
    )
    return Dataset(
        p, f"Last.fm hetrec-2011 ({len(user_raw)} users, {len(topic_raw)} artists, {table.num_rows} plays rows)"
    )


def synthetic_set(n_users: int = 5000, n_topics: int = 1000, test_share: float = 0.2, seed: int = 0) -> Dataset:
    cfg = SyntheticConfig(n_users=n_users, n_topics=n_topics, users_per_chunk=max(100, n_users), seed=seed)
    raw = synthetic.generate(cfg)
    test_ids = pick_test_users(n_users, test_share, seed)
    hist = build_histories(raw, 1, "latest", test_ids, seed)
    p = holdout_protocol("synthetic", hist, n_topics, n_users)
    m = pa.concat_tables([synthetic.memberships(cfg, c) for c in range(synthetic.n_chunks(cfg))])
    counts = np.bincount(m.column("user_id").to_numpy(), minlength=n_users)
    return Dataset(
        p,
        f"synthetic ({n_users} users, {n_topics} topics, {cfg.n_communities} planted communities)",
        {int(u): int(c) for u, c in enumerate(counts)},
    )


def load(name: str, synthetic_users: int = 5000) -> Dataset:
    if name == "ml-100k":
        return movielens()
    if name == "lastfm":
        return lastfm()
    return synthetic_set(synthetic_users)
