"""Ray Train with two workers, export with Ray Data, faiss index: what the tiny run wrote.

The session's tiny run (tests/conftest.py) ran every step as a user runs them; these tests read
its artifacts rather than training again. Resuming (a worker killed mid-epoch, a killed job
rerun): tests/e2e/test_fault_tolerance.py.
"""

import numpy as np
import pytest

from reco import artifacts
from reco.data.vectors import vectors_of
from reco.embedding.export import load_model
from reco.embedding.index import from_bytes
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def test_two_workers_train_and_report_every_epoch(tiny_run):
    run = RunDir(tiny_run[0])
    s = run.read_json(artifacts.metrics("training"))
    assert s["workers"] == 2 and s["epochs_run"] == 4
    assert [h["epoch"] for h in s["history"]] == [1, 2, 3, 4]
    assert all(h["val_targets"] > 0 and 0 <= h["val_hit@10"] <= 1 for h in s["history"])
    model, meta = load_model(run.read_bytes(artifacts.STARSPACE_MODEL))
    assert model.n_topics == 60 and meta["best_epoch"] == s["best_epoch"]


def test_export_and_index(tiny_run):
    run = RunDir(tiny_run[0])
    users = run.read_table(artifacts.USER_EMBEDDINGS)
    vecs = vectors_of(users)
    assert vecs.shape == (600, 16)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert run.read_json(artifacts.metrics("index"))["recall@10_vs_exact"] == 1.0
    index = from_bytes(run.read_bytes(artifacts.index("users")))
    ids = run.read_table(artifacts.index_ids("users")).column("user_id").to_numpy()
    _, nn = index.search(vecs[:3], 1)
    assert ids[nn[:, 0]].tolist() == users.column("user_id").to_numpy()[:3].tolist()
