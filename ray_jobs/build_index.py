"""build_index: faiss indexes over the user and topic embeddings, with their id maps.

``index/users.faiss`` (exact inner product by default; IVF or HNSW from ``index.kind``) and
``index/topics.faiss`` (always exact: topics are few), each beside an ``*_ids.parquet`` mapping
index positions to dense ids. Reports recall@10 of the user index against exact search on
``index.recall_queries`` sampled users.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa

from ray_jobs.common import StepTimer, job_main
from reco import artifacts
from reco.config import Config
from reco.data.vectors import vectors_of
from reco.embedding.config import IndexConfig
from reco.embedding.index import build_index, describe, recall_at_k, to_bytes
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.build_index")
STEP = "build_index"


def _write(run: RunDir, name: str, index, ids: np.ndarray, id_column: str, meta: dict) -> None:
    run.write_table(
        artifacts.index_ids(name),
        pa.table({"position": np.arange(len(ids), dtype=np.int64), id_column: ids}),
        step=STEP,
    )
    run.write_bytes(artifacts.index(name), to_bytes(index), step=STEP, rows=int(index.ntotal), meta=meta)


def run(cfg: Config, run: RunDir) -> dict:
    users = run.read_table(artifacts.USER_EMBEDDINGS)
    ids, vecs = users.column("user_id").to_numpy(), vectors_of(users)
    with StepTimer(f"user index ({cfg.index.kind}, {len(ids)} vectors)") as t_build:
        index = build_index(vecs, cfg.index)
    rng = np.random.default_rng(0)
    q = vecs[rng.choice(len(vecs), size=min(cfg.index.recall_queries, len(vecs)), replace=False)]
    t = time.perf_counter()
    recall = recall_at_k(index, vecs, q, k=10)
    query_ms = (time.perf_counter() - t) * 1000 / len(q)
    kind = describe(index)
    log.info("user index %s: recall@10 vs exact %.4f", kind, recall)
    _write(run, "users", index, ids, "user_id", {"kind": kind, "recall@10": recall})
    topics = run.read_table(artifacts.TOPIC_EMBEDDINGS)
    topic_index = build_index(vectors_of(topics), IndexConfig(kind="flat"))
    _write(
        run, "topics", topic_index, topics.column("topic_id").to_numpy(), "topic_id", {"kind": describe(topic_index)}
    )
    summary = {
        "step": STEP,
        "users": len(ids),
        "kind": kind,
        "recall@10_vs_exact": recall,
        "build_seconds": t_build.seconds,
        "recall_queries": len(q),
        "ms_per_query_incl_exact": query_ms,
        "topics": topics.num_rows,
    }
    run.write_json(artifacts.metrics("index"), summary, step=STEP)
    return summary


main = job_main(run, __doc__.splitlines()[0], needs_ray=False)

if __name__ == "__main__":
    raise SystemExit(main())
