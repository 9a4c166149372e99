"""A run directory's artifacts as retriever inputs: training data, all users, features.

Training users are the histories' ``train`` role; their validation targets (the spine's held-out
interactions) drive early stopping. Every user (``test`` users too, who never train) is indexed
from their input topics, as export_embeddings embeds them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reco import artifacts
from reco.data.histories import flat_lists, select_role
from reco.data.vectors import vectors_of
from reco.retrieval.data import Queries, TrainingData, UserSequences, ragged_offsets
from reco.retrieval.features import features_for
from reco.run_dir import RunDir


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
    return TrainingData(
        UserSequences.from_table(train),
        n_topics,
        n_users,
        topic_vectors(run),
        items,
        users,
        queries_from_histories(val) if val.num_rows else None,
    )


def all_users(run: RunDir) -> UserSequences:
    return UserSequences.from_table(run.read_table(artifacts.HISTORIES, columns=["user_id", "topics", "ts", "weights"]))
