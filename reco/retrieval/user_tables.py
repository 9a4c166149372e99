"""A retriever's saved user table: built from history batches, and refreshed only where users changed.

The batch jobs (ray_jobs/multi_interest.py, train_sequence.py, train_two_tower.py, train_mf.py)
run :class:`UserTableBuilder` over the histories with Ray Data; a rerun re-embeds only users
whose history changed since the table was written (PinnerFormer's daily job).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reco.retrieval.data import UserSequences
from reco.retrieval.registry import load_retriever
from reco.run_dir import RunDir


class UserTableBuilder:
    """History batches -> a retriever's user table; a Ray Data actor UDF for the batch jobs.

    It loads the retriever's saved model part from the run directory itself (checked against
    the manifest), so an actor restarted elsewhere needs only the run directory's URI.
    """

    def __init__(self, run_uri: str, name: str):
        import torch

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
