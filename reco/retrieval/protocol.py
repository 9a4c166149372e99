"""The retrieval benchmark's protocols and metrics.

MovieLens 100K, per-user temporal split: most ML-100K users rate everything in one sitting, so
a global time cut leaves almost no user on both sides. Each user's ratings are sorted by
(timestamp, movie id); the first 80% are the input, the rest the targets: all of them for the
all-action metric (PinnerFormer's long horizon), the first alone for next-item. Validation is
carved from the inputs only (each user's last 10% of input as validation targets, the first 90%
as validation input), so settings are chosen without ever looking at the targets; the final
models are refitted on the whole inputs.

Last.fm and the synthetic set use the spine's held-out protocol: training users' held-out topic
is the validation target, users held out entirely (``ingest.test_users``) are the test.

recall@K of a user is the share of their targets among the top K retrieved topics (never one
already in the input), averaged over users; with one target it is hit@K. next-item recall@K is
whether the first target is in the top K. The by-diversity breakdown averages a per-user figure
within buckets of how many interests a user has ("1", "2", "3+").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from reco.data.histories import select_role
from reco.retrieval.base import Retriever
from reco.retrieval.data import Queries, TrainingData, UserSequences, ragged_offsets, ragged_rows
from reco.retrieval.run_data import queries_from_histories

KS = (10, 50, 100)


@dataclass
class Protocol:
    """Fit on ``fit_val`` and score ``val`` to choose settings; fit on ``fit_test`` and score ``test`` once."""

    name: str
    fit_val: TrainingData
    val: Queries
    fit_test: TrainingData
    test: Queries
    refit: bool  # False where fit_test is fit_val (the held-out protocols)
    notes: list[str] = field(default_factory=list)


def split_tail(seqs: UserSequences, n_targets: np.ndarray) -> Queries:
    """Each user's last ``n_targets`` topics become targets, the rest the input."""
    n_in = seqs.lengths - np.asarray(n_targets, np.int64)
    inputs = seqs.head(n_in)
    pos = np.arange(len(seqs.topics)) - np.repeat(seqs.offsets[:-1], seqs.lengths)
    is_target = pos >= np.repeat(n_in, seqs.lengths)
    return Queries(inputs, ragged_offsets(seqs.lengths - n_in), seqs.topics[is_target])


def temporal_split(seqs: UserSequences, input_share: float = 0.8) -> Queries:
    """The first ``input_share`` of each user's topics (at least one) as input, the rest as targets."""
    n_in = np.clip(np.floor(input_share * seqs.lengths).astype(np.int64), 1, np.maximum(seqs.lengths - 1, 1))
    return split_tail(seqs, seqs.lengths - n_in)


def movielens_protocol(
    seqs: UserSequences,
    n_topics: int,
    n_users: int,
    input_share: float = 0.8,
    validation_share: float = 0.1,
    item_features: np.ndarray | None = None,
    user_features: np.ndarray | None = None,
) -> Protocol:
    """The per-user temporal 80/20 split, validation carved from each user's last 10% of input."""
    keep = seqs.lengths >= 3
    test = temporal_split(seqs.take(np.flatnonzero(keep)), input_share)
    n_val = np.maximum(1, np.round(validation_share * test.inputs.lengths).astype(np.int64))
    val = split_tail(test.inputs, np.minimum(n_val, test.inputs.lengths - 1))
    fit_val = TrainingData(val.inputs, n_topics, n_users, None, item_features, user_features, validation=val)
    fit_test = TrainingData(test.inputs, n_topics, n_users, None, item_features, user_features, validation=None)
    notes = [f"{int((~keep).sum())} users with fewer than 3 ratings left out"] if (~keep).any() else []
    return Protocol("ml-100k", fit_val, val, fit_test, test, refit=True, notes=notes)


def holdout_protocol(
    name: str,
    histories: pa.Table,
    n_topics: int,
    n_users: int,
    item_features: np.ndarray | None = None,
    user_features: np.ndarray | None = None,
) -> Protocol:
    """The spine's protocol from history rows: train users' targets validate, test users' targets test."""
    train = select_role(histories, "train")
    val = queries_from_histories(select_role(histories, "train", min_input=1, need_targets=True))
    test = queries_from_histories(select_role(histories, "test", min_input=1, need_targets=True))
    fit = TrainingData(
        UserSequences.from_table(train), n_topics, n_users, None, item_features, user_features, validation=val
    )
    return Protocol(name, fit, val, fit, test, refit=False)


def target_positions(candidates: np.ndarray, queries: Queries) -> np.ndarray:
    """Position of every target among its user's candidates; K (not found) where absent."""
    rows = ragged_rows(queries.target_offsets)
    eq = candidates[rows] == queries.targets[:, None]
    found = eq.any(axis=1)
    return np.where(found, eq.argmax(axis=1), candidates.shape[1])


@dataclass
class Scores:
    """Mean figures and the per-user recall@10 behind the by-diversity breakdown."""

    summary: dict[str, float]
    per_user: dict[str, np.ndarray]  # metric -> (users with targets,) values
    user_ids: np.ndarray


def recall_scores(candidates: np.ndarray, queries: Queries, ks: tuple[int, ...] = KS) -> Scores:
    pos = target_positions(candidates, queries)
    lengths = np.diff(queries.target_offsets)
    has = lengths > 0
    rows = ragged_rows(queries.target_offsets)
    first = pos[queries.target_offsets[:-1][has]]
    summary, per_user = {}, {}
    for k in ks:
        hits = np.bincount(rows, weights=(pos < k).astype(np.float64), minlength=len(lengths))
        per_user[f"recall@{k}"] = hits[has] / lengths[has]
        per_user[f"next_item_recall@{k}"] = (first < k).astype(np.float64)
    for key, values in per_user.items():
        summary[key] = float(values.mean()) if len(values) else float("nan")
    summary["users"] = int(has.sum())
    summary["targets"] = int(lengths.sum())
    return Scores(summary, per_user, queries.inputs.user_ids[has])


def retrieve(retriever: Retriever, queries: Queries, k: int, batch_size: int = 512) -> np.ndarray:
    """(users, k) candidate ids for every query user, indexing their inputs first."""
    retriever.index_users(queries.inputs)
    ids = queries.inputs.user_ids
    return np.concatenate(
        [retriever.candidates(ids[s : s + batch_size], k).ids for s in range(0, len(ids), batch_size)]
    )


def evaluate(retriever: Retriever, queries: Queries, ks: tuple[int, ...] = KS) -> Scores:
    return recall_scores(retrieve(retriever, queries, max(ks)), queries, ks)


def diversity_label(n: int) -> str:
    return "1" if n <= 1 else "2" if n == 2 else "3+"


def by_diversity(values: np.ndarray, user_ids: np.ndarray, diversity: dict[int, int]) -> dict[str, dict[str, float]]:
    """Mean of a per-user figure within diversity buckets, with the bucket's user count."""
    labels = np.array([diversity_label(diversity.get(int(u), 1)) for u in user_ids])
    out = {}
    for label in ("1", "2", "3+"):
        m = labels == label
        out[label] = {"value": float(values[m].mean()) if m.any() else float("nan"), "users": int(m.sum())}
    return out
