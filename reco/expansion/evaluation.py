"""The protocol's inputs read from a run directory, and a worker that runs (list, split) pairs.

``ProtocolWorker`` loads the user space (embeddings, activity, LSH codes, a faiss index) and
the run's seed lists once, then evaluates whatever (list, split) pairs it is handed, so a Ray
Data actor pool can spread the protocol over cores while a single process can run it alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from reco import artifacts
from reco.expansion.config import ExpansionConfig
from reco.expansion.protocol import EvalList, UserSpace, evaluate_split
from reco.expansion.user_vectors import VectorSets, read_user_vectors
from reco.run_dir import RunDir


def has_seed_lists(run: RunDir) -> bool:
    return run.has(artifacts.SEED_LISTS)


def load_space(run: RunDir, cfg: ExpansionConfig) -> tuple[UserSpace, np.ndarray]:
    """The user space of a run (``expansion.user_vectors``' vectors) and the dense user id at each position."""
    users = read_user_vectors(run, cfg.user_vectors)
    ids = users.column("user_id").to_numpy()
    vocab = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "count"])
    counts = np.zeros(int(max(ids.max(), vocab.column("user_id").to_numpy().max())) + 1, dtype=np.int64)
    counts[vocab.column("user_id").to_numpy()] = vocab.column("count").to_numpy()
    return UserSpace.build(VectorSets.from_table(users, cfg.max_vectors), counts[ids], cfg), ids


def _positions(table: pa.Table, raw_to_pos: dict[str, int]) -> dict[str, np.ndarray]:
    df = table.to_pandas()
    df["pos"] = df["user_id"].map(raw_to_pos)
    df = df.dropna(subset=["pos"])
    return {str(k): np.sort(g["pos"].to_numpy(np.int64)) for k, g in df.groupby("seed_list_id", sort=False)}


def load_eval_lists(run: RunDir, cfg: ExpansionConfig, ids: np.ndarray) -> list[EvalList]:
    """The run's seed lists (and truths) as positions in the user space, with their bucket."""
    vocab = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"])
    raw_of = dict(zip(vocab.column("user_id").to_numpy().tolist(), vocab.column("raw_id").to_pylist()))
    raw_to_pos = {raw_of[int(u)]: i for i, u in enumerate(ids)}
    members = _positions(run.read_table(artifacts.SEED_LISTS), raw_to_pos)
    truth = _positions(run.read_table(artifacts.LIST_TRUTH), raw_to_pos) if run.has(artifacts.LIST_TRUTH) else {}
    return [EvalList(k, v, cfg.buckets.of(len(v)), truth.get(k)) for k, v in members.items() if len(v) >= 2]


class ProtocolWorker:
    """Evaluates batches of (list id, split) pairs; a Ray Data actor UDF or a plain callable."""

    def __init__(self, run_uri: str, expansion: dict[str, Any]):
        self.cfg = ExpansionConfig.model_validate(expansion)
        run = RunDir(run_uri)
        self.space, ids = load_space(run, self.cfg)
        self.lists = {lst.list_id: lst for lst in load_eval_lists(run, self.cfg, ids)}

    def __call__(self, batch: dict[str, np.ndarray]) -> pd.DataFrame:
        rows: list[dict] = []
        for i, split in zip(batch["list"].tolist(), batch["split"].tolist()):
            if str(i) in self.lists:  # a list of one seed cannot be split: nothing to evaluate
                rows += evaluate_split(self.space, self.lists[str(i)], int(split), self.cfg)
        return pd.DataFrame(rows)
