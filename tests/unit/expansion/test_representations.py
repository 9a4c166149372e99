"""Several representations through the protocol's worker, Ray-free: a tiny run directory with
StarSpace-shaped vectors, ALS fitted on its histories and co-engagement; validation samples in,
an ensemble choice out, the test stage applying it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reco import artifacts
from reco.data.vectors import vector_table
from reco.embedding import als
from reco.embedding.config import ALSConfig, IndexConfig
from reco.embedding.index import build_index, to_bytes
from reco.errors import DataError
from reco.expansion.config import ExpansionConfig
from reco.expansion.ensemble import choose
from reco.expansion.evaluation import ProtocolWorker, load_representations, split_samples
from reco.expansion.expander import AudienceExpander
from reco.run_dir import RunDir


def tiny_run(tmp_path, n_users=240, n_topics=60, groups=4, seed=0) -> RunDir:
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % groups
    topics = [np.flatnonzero((np.arange(n_topics) % groups == g) & (rng.random(n_topics) < 0.5)) for g in group]
    run = RunDir(str(tmp_path / "run"))
    run.start({})
    run.write_table(
        artifacts.USER_VOCAB,
        pa.table(
            {
                "user_id": np.arange(n_users),
                "raw_id": [f"u{i}" for i in range(n_users)],
                "count": [len(t) for t in topics],
            }
        ),
        step="test",
    )
    run.write_table(artifacts.TOPIC_VOCAB, pa.table({"topic_id": np.arange(n_topics)}), step="test")
    run.write_table(
        artifacts.HISTORIES,
        pa.table(
            {
                "user_id": np.arange(n_users),
                "topics": pa.array([t.tolist() for t in topics], pa.list_(pa.int64())),
                "weights": pa.array([[1.0] * len(t) for t in topics], pa.list_(pa.float32())),
            }
        ),
        step="test",
    )
    noisy = np.eye(8)[group] + 0.8 * rng.standard_normal((n_users, 8))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    run.write_table(artifacts.USER_EMBEDDINGS, vector_table("user_id", np.arange(n_users), noisy), step="test")
    ids = np.arange(n_users)
    run.write_table(artifacts.index_ids("users"), pa.table({"position": ids, "user_id": ids}), step="test")
    index = build_index(noisy.astype(np.float32), IndexConfig())
    run.write_bytes(artifacts.index("users"), to_bytes(index), step="test")
    members = np.flatnonzero(group == 0)
    run.write_table(
        artifacts.SEED_LISTS,
        pa.table({"seed_list_id": ["g0"] * len(members), "user_id": [f"u{i}" for i in members]}),
        step="test",
        meta={"source": "test"},
    )
    return run


def test_every_representation_is_scored_and_the_validation_samples_choose_the_ensemble(tmp_path):
    run = tiny_run(tmp_path)
    als.fit_run(run, ALSConfig(factors=8, iterations=5))
    assert als.is_current(run, ALSConfig(factors=8, iterations=5))
    assert not als.is_current(run, ALSConfig(factors=16, iterations=5))
    cfg = ExpansionConfig(
        representations=["starspace", "als", "coengagement"],
        protocol={"stage": "validation", "splits": 2, "methods": ["centroid", "logreg", "random"]},
        coengagement={"neighbours": 20, "neighbours_of": "users"},
    )
    reps, ids = load_representations(run, cfg)
    assert list(reps.spaces) == ["starspace", "als"] and reps.coengagement is not None and len(ids) == 240
    assert reps.coengagement.knn is not None and reps.coengagement.knn.getnnz(axis=1).max() <= 20
    worker = ProtocolWorker(run.uri, cfg.model_dump())
    rows, samples = split_samples(worker({"list": np.array(["g0", "g0"]), "split": np.array([0, 1])}))
    assert {"starspace:centroid", "als:logreg", "coengagement", "random"} <= set(rows["method"])
    assert "sample" not in rows.columns and len(samples) == 2
    chosen = choose(samples, cfg.ensemble)["medium"]
    assert chosen.best_recall >= max(chosen.singles.values()) >= 0 and chosen.recall <= chosen.best_recall
    test_cfg = cfg.model_copy(
        update={
            "protocol": cfg.protocol.model_copy(update={"stage": "test"}),
            "ensemble": cfg.ensemble.model_copy(
                update={"weights": cfg.ensemble.weights.model_copy(update={"medium": chosen.weights})}
            ),
        }
    )
    test_rows = ProtocolWorker(run.uri, test_cfg.model_dump())({"list": np.array(["g0"]), "split": np.array([0])})
    assert "ensemble" in set(test_rows["method"]) and "sample" not in test_rows.columns


def test_the_served_expander_fuses_the_ensembles_components(tmp_path):
    run = tiny_run(tmp_path)
    als.fit_run(run, ALSConfig(factors=8, iterations=5))
    weights = {"als:logreg": 1.0, "starspace:blend": 0.5, "coengagement": 1.0}
    cfg = ExpansionConfig(
        representations=["starspace", "als", "coengagement"],
        audience_size=30,
        ensemble={"weights": {"small": weights, "medium": weights}},
    )
    cfg.classifier.hidden = 8
    ex = AudienceExpander(run.uri, cfg)
    seeds = [f"u{i}" for i in range(0, 80, 4)]  # 20 users of group 0
    out = ex.expand(seeds, k=30, method="ensemble")
    assert len(out.user_ids) == 30 and not set(out.user_ids) & set(seeds)
    assert np.mean([int(u[1:]) % 4 == 0 for u in out.user_ids]) > 0.8
    assert np.all(np.diff(out.scores) <= 0)
    plain = AudienceExpander(run.uri, ExpansionConfig(audience_size=30))
    with pytest.raises(DataError, match="expansion.representations"):
        plain.expand(seeds, method="ensemble")
