"""The protocol's inputs read from a run directory, and a worker that runs (list, split) pairs.

``ProtocolWorker`` loads the user space (embeddings, activity, LSH codes, a faiss index; one per
representation in ``expansion.representations``, and co-engagement's user-topic rows) and the
run's seed lists once, then evaluates whatever (list, split) pairs it is handed, so a Ray Data
actor pool can spread the protocol over cores while a single process can run it alone. On the
validation stage with more than one component it also hands back each split's rank sample
(reco.expansion.ensemble) as a row of its own (``metric == SAMPLE``), for the ensemble chooser.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from reco import artifacts
from reco.embedding.als import run_matrix
from reco.expansion.coengagement import CoEngagement
from reco.expansion.config import ExpansionConfig
from reco.expansion.ensemble import RankSample
from reco.expansion.protocol import EvalList, Representations, UserSpace, evaluate_split
from reco.expansion.user_vectors import (
    COENGAGEMENT,
    VectorSets,
    check_representations,
    read_user_vectors,
    representations,
)
from reco.run_dir import RunDir

SAMPLE = "rank_sample"  # the metric of a row that carries a RankSample (column "sample") instead of a figure


def has_seed_lists(run: RunDir) -> bool:
    return run.has(artifacts.SEED_LISTS)


def load_space(run: RunDir, cfg: ExpansionConfig) -> tuple[UserSpace, np.ndarray]:
    """The user space of a run (``expansion.user_vectors``' vectors) and the dense user id at each position."""
    users = read_user_vectors(run, cfg.user_vectors)
    ids = users.column("user_id").to_numpy()
    return UserSpace.build(VectorSets.from_table(users, cfg.max_vectors), _activity(run, ids), cfg), ids


def _activity(run: RunDir, ids: np.ndarray) -> np.ndarray:
    vocab = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "count"])
    counts = np.zeros(int(max(ids.max(), vocab.column("user_id").to_numpy().max())) + 1, dtype=np.int64)
    counts[vocab.column("user_id").to_numpy()] = vocab.column("count").to_numpy()
    return counts[ids]


def _aligned(table: pa.Table, ids: np.ndarray, limit: int) -> VectorSets:
    """A vector table's sets in the order of ``ids`` (a user the table lacks gets no vector: it scores -inf)."""
    sets = VectorSets.from_table(table, limit)
    own = table.column("user_id").to_numpy()
    if np.array_equal(own, ids):
        return sets
    where = {int(u): i for i, u in enumerate(own)}
    rows = np.asarray([where.get(int(u), -1) for u in ids])
    out = sets.take(np.maximum(rows, 0))
    mask = out.mask & (rows >= 0)[:, None]
    return VectorSets(np.where(mask[..., None], out.vectors, 0.0).astype(np.float32), mask)


def load_representations(run: RunDir, cfg: ExpansionConfig) -> tuple[Representations, np.ndarray]:
    """Every representation ``cfg`` names, on one user order (the first vector representation's users)."""
    names = representations(cfg)
    check_representations(names)
    vector_names = [n for n in names if n != COENGAGEMENT]
    tables = {n: read_user_vectors(run, n) for n in vector_names}
    if tables:
        ids = tables[vector_names[0]].column("user_id").to_numpy()
    else:
        ids = run_matrix(run)[0]
    activity = _activity(run, ids)
    spaces = {n: UserSpace.build(_aligned(t, ids, cfg.max_vectors), activity, cfg) for n, t in tables.items()}
    co = None
    if COENGAGEMENT in names:
        users, matrix = run_matrix(run)
        where = {int(u): i for i, u in enumerate(users)}
        rows = np.asarray([where.get(int(u), -1) for u in ids])
        picked = matrix[np.maximum(rows, 0)]
        picked = picked.multiply((rows >= 0)[:, None]).tocsr()  # a user without a history engages with nothing
        co = CoEngagement.build(picked, cfg.coengagement)
    if not spaces:
        raise ValueError("expansion.representations: at least one vector representation is needed beside coengagement")
    return Representations(spaces, co), ids


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
        if self.cfg.representations:
            self.space, ids = load_representations(run, self.cfg)
        else:
            self.space, ids = load_space(run, self.cfg)
        self.samples = (
            self.cfg.protocol.stage == "validation" and Representations.of(self.space).prefixed
        )  # the ensemble chooser's input
        self.lists = {lst.list_id: lst for lst in load_eval_lists(run, self.cfg, ids)}

    def __call__(self, batch: dict[str, np.ndarray]) -> pd.DataFrame:
        rows: list[dict] = []
        samples: list[RankSample] | None = [] if self.samples else None
        for i, split in zip(batch["list"].tolist(), batch["split"].tolist()):
            if str(i) in self.lists:  # a list of one seed cannot be split: nothing to evaluate
                rows += evaluate_split(self.space, self.lists[str(i)], int(split), self.cfg, samples)
        if samples is None:
            return pd.DataFrame(rows)
        out = pd.DataFrame(rows).assign(sample=b"")
        extra = [
            {
                "list": s.list_id,
                "bucket": self.lists[s.list_id].bucket,
                "split": s.split,
                "size": len(self.lists[s.list_id].members),
                "seeds": s.seeds,
                "held_out": s.held_out,
                "method": "ensemble",
                "metric": SAMPLE,
                "value": float("nan"),
                "sample": s.to_bytes(),
            }
            for s in samples
        ]
        return pd.concat([out, pd.DataFrame(extra)], ignore_index=True)


def split_samples(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[RankSample]]:
    """(the figure rows, the rank samples) of the protocol's long table."""
    if "sample" not in rows.columns:
        return rows, []
    is_sample = rows["metric"] == SAMPLE
    samples = [RankSample.from_bytes(bytes(b)) for b in rows.loc[is_sample, "sample"]]
    return rows[~is_sample].drop(columns=["sample"]).reset_index(drop=True), samples
