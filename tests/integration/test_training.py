"""Ray Train with two workers on a tiny run, resume, export with Ray Data, faiss index."""

import numpy as np
import pytest

from ray_jobs import build_index, export_embeddings, ingest, train_embeddings
from reco.embeddings import load_model, vectors_of
from reco.index import from_bytes
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def trained(ray_session, tmp_path_factory):
    from reco.config import load_config

    root = tmp_path_factory.mktemp("trained")
    cfg = load_config("configs/tiny.yaml", [f"run_dir={root}", "embedding.epochs=2"])
    run = RunDir(cfg.run_dir)
    ingest.run(cfg, run)
    summary = train_embeddings.run(cfg, run)
    return cfg, run, summary


def test_two_workers_train_and_report_every_epoch(trained):
    cfg, run, s = trained
    assert s["workers"] == 2 and s["epochs_run"] == 2
    hist = run.read_json("metrics/training.json")["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(h["val_targets"] > 0 and 0 <= h["val_hit@10"] <= 1 for h in hist)
    model, meta = load_model(run.read_bytes("models/starspace.pt"))
    assert model.n_topics == 60 and meta["best_epoch"] == s["best_epoch"]


def test_rerun_resumes_from_the_latest_checkpoint(trained):
    cfg, run, first = trained
    more = cfg.model_copy(deep=True)
    more.embedding.epochs = 3
    s = train_embeddings.run(more, run)
    assert s["train_run"] == first["train_run"]
    assert s["resumed_after_epochs"] == [2]
    assert [h["epoch"] for h in run.read_json("metrics/training.json")["history"]] == [1, 2, 3]


def test_export_and_index(trained):
    cfg, run, _ = trained
    ex = export_embeddings.run(cfg, run)
    assert ex["users"] == 600
    users = run.read_table("embeddings/users")
    vecs = vectors_of(users)
    assert vecs.shape == (600, cfg.embedding.dim)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    idx = build_index.run(cfg, run)
    assert idx["recall@10_vs_exact"] == 1.0
    index = from_bytes(run.read_bytes("index/users.faiss"))
    ids = run.read_table("index/users_ids.parquet").column("user_id").to_numpy()
    _, nn = index.search(vecs[:3], 1)
    assert ids[nn[:, 0]].tolist() == users.column("user_id").to_numpy()[:3].tolist()
