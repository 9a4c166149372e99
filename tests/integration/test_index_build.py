"""build_index with index.kind=ivfpq on a copy of the tiny run: trained on a sample, added in shards by Ray tasks."""

import numpy as np
import pytest

from ray_jobs import build_index as job
from reco import artifacts
from reco.config import load_config
from reco.data.vectors import vectors_of
from reco.embedding.index import build_index, from_bytes, to_bytes
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def test_ivfpq_in_shards_reports_recall_and_loads(copy_run):
    run_dir = copy_run("index-ivfpq")
    cfg = load_config(
        "configs/tiny.yaml",
        [
            f"run_dir={run_dir}",
            "index.kind=ivfpq",
            "index.min_vectors=100",  # the tiny run has 600 users
            "index.pq_m=4",
            "index.pq_nbits=6",
            "index.shard_rows=250",  # three Ray tasks, the last one short
        ],
    )
    run = RunDir(cfg.run_dir)
    summary = job.run(cfg, run)
    assert summary["kind"].startswith("IVF") and "PQ4x6" in summary["kind"]
    assert 0.2 < summary["recall@10_vs_exact"] <= 1.0 and summary["recall_queries"] == 100
    assert run.read_json(artifacts.metrics("index"))["recall@10_vs_exact"] == summary["recall@10_vs_exact"]

    written = run.read_bytes(artifacts.index("users"))
    index = from_bytes(written)
    users = run.read_table(artifacts.USER_EMBEDDINGS)
    vecs = vectors_of(users)
    assert index.ntotal == len(vecs) == 600
    # the shards merged by the driver are the index built in one go from the same sample
    assert written == to_bytes(build_index(vecs, cfg.index))
    ids = run.read_table(artifacts.index_ids("users")).column("user_id").to_numpy()
    _, nn = index.search(vecs[:20], 10)
    own = users.column("user_id").to_numpy()[:20]
    assert np.mean([o in ids[row] for o, row in zip(own, nn)]) >= 0.8  # a user is among its own neighbours
