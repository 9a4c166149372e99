"""A run directory's artifacts as retriever inputs: training data, all users, features.

Training users are the histories' ``train`` role; their validation targets (the spine's held-out
interactions) drive early stopping. Every user (``test`` users too, who never train) is indexed
from their input topics, as export_embeddings embeds them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reco.data.vectors import vectors_of
from reco.data.histories import flat_lists, select_role
from reco.retrieval.data import Queries, TrainingData, UserSequences, ragged_offsets
from reco.retrieval.features import features_for
from reco.run_dir import RunDir
from reco import artifacts


def queries_from_histories(hist: pa.Table) -> Queries:
    """History rows with targets as queries: inputs to retrieve from, targets to find."""
    targets, lengths = flat_lists(hist.column("targets"))
    return Queries(UserSequences.from_table(hist), ragged_offsets(lengths), targets)


def topic_vectors(run: RunDir) -> np.ndarray | None:
    if not run.has(artifacts.TOPIC_EMBEDDINGS):
        return None
    table = run.read_table(artifacts.TOPIC_EMBEDDINGS)
    vecs = np.zeros((table.num_rows, table.column("embedding").type.list_size), np.float32)
    vecs[table.column("topic_id").to_numpy()] = vectors_of(table)
    return vecs


def run_features(run: RunDir) -> tuple[np.ndarray | None, np.ndarray | None]:
    data = run.config().get("data", {})
    if data.get("format") != "movielens":
        return None, None
    users = run.read_table(artifacts.USER_VOCAB, columns=["raw_id"]).column("raw_id").to_pylist()
    topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["raw_id"]).column("raw_id").to_pylist()
    return features_for("movielens", data.get("path"), users, topics)


def training_data(run: RunDir, val_max_users: int = 5000) -> TrainingData:
    hist = run.read_table(artifacts.HISTORIES)
    train = select_role(hist, "train")
    val = select_role(hist, "train", min_input=1, need_targets=True)
    val = val.slice(0, val_max_users)
    n_topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id"]).num_rows
    n_users = run.read_table(artifacts.USER_VOCAB, columns=["user_id"]).num_rows
    items, users = run_features(run)
    return TrainingData(UserSequences.from_table(train), n_topics, n_users, topic_vectors(run), items, users,
                        queries_from_histories(val) if val.num_rows else None)


def all_users(run: RunDir) -> UserSequences:
    return UserSequences.from_table(run.read_table(artifacts.HISTORIES, columns=["user_id", "topics", "ts", "weights"]))


class UserTableBuilder:
    """History batches -> a retriever's user table; a Ray Data actor UDF for the batch jobs.

    It loads the retriever's saved model part from the run directory itself (checked against
    the manifest), so an actor restarted elsewhere needs only the run directory's URI.
    """

    def __init__(self, run_uri: str, name: str):
        import torch

        from reco.retrieval.base import load_retriever

        torch.set_num_threads(1)
        self.retriever = load_retriever(name, RunDir(run_uri), users=False)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.retriever.user_table(UserSequences.from_table(batch))


def history_signatures(table: pa.Table) -> dict[int, tuple[int, int, int]]:
    """user_id -> (engagements, latest ts, sum of topic ids): changes when a user engages again."""
    seqs = UserSequences.from_table(table)
    lengths = seqs.lengths
    rows = np.repeat(np.arange(len(seqs)), lengths)
    latest = np.full(len(seqs), np.iinfo(np.int64).min)
    np.maximum.at(latest, rows, seqs.ts)
    sums = np.bincount(rows, weights=seqs.topics.astype(np.float64), minlength=len(seqs)).astype(np.int64)
    return {int(u): (int(n), int(t), int(s)) for u, n, t, s in zip(seqs.user_ids, lengths, latest, sums)}


def users_to_embed(previous: pa.Table | None, current: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(users whose vectors must be (re)computed, users whose old rows must go).

    Without previous vectors every user is embedded; otherwise only users that are new or whose
    history changed since (PinnerFormer's daily job re-embeds only users with new engagements).
    """
    now = history_signatures(current)
    if previous is None:
        return np.array(sorted(now), np.int64), np.empty(0, np.int64)
    before = history_signatures(previous)
    changed = np.array(sorted(u for u, sig in now.items() if before.get(u) != sig), np.int64)
    gone = np.array(sorted(set(before) - set(now)), np.int64)
    return changed, np.union1d(changed, gone)


def keep_users(batch: pa.Table, user_ids: np.ndarray, keep: bool = True) -> pa.Table:
    """Rows of ``batch`` whose user is (``keep``) or is not in ``user_ids``."""
    inside = np.isin(batch.column("user_id").to_numpy(), user_ids)
    return batch.filter(pa.array(inside if keep else ~inside))
