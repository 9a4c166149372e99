"""train_ranker on Ray Train with two workers (the tiny run's pipeline step): every epoch reported, artifacts, "
"resume."""

import numpy as np
import pytest

from ray_jobs import train_ranker
from reco import artifacts
from reco.rank.artifact import Ranker
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def trained(copy_run):
    """A copy of the session's tiny run, whose pipeline trained a DeepFM ranker with two workers."""
    from reco.config import load_config

    root = copy_run("ranker")
    cfg = load_config("configs/tiny.yaml", [f"run_dir={root}"])
    run = RunDir(cfg.run_dir)
    return cfg, run, run.read_json(train_ranker.METRICS_ARTIFACT)


def test_two_workers_report_every_epoch_and_write_one_artifact(trained):
    cfg, run, s = trained
    assert s["workers"] == 2 and s["epochs_run"] == 2 and s["model"] == "deepfm"
    hist = run.read_json(train_ranker.METRICS_ARTIFACT)["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(0 <= h["val_auc"] <= 1 and h["train_examples"] > 0 for h in hist)
    # both workers trained on their shards: together they saw every training row each epoch
    assert hist[0]["train_examples"] == pytest.approx(s["rows"]["train"], rel=0.01)
    test = s["test"]["ctr"]["label"]
    assert test["auc"] > 0.55 and test["rows"] == s["rows"]["test"]
    assert {"ece_before", "ece_after", "brier_before", "brier_after"} <= set(test)
    assert run.read_bytes(train_ranker.RELIABILITY_ARTIFACT)[:8] == b"\x89PNG\r\n\x1a\n"
    assert run.read_table(train_ranker.PREDICTIONS_ARTIFACT).num_rows == s["rows"]["test"]


def test_artifact_scores_raw_ids_with_features_fitted_on_training_rows(trained):
    cfg, run, s = trained
    ranker = Ranker.load(run.uri)
    users = run.read_table(artifacts.USER_VOCAB).column("raw_id").to_pylist()
    topics = run.read_table(artifacts.TOPIC_VOCAB).column("raw_id").to_pylist()
    probs = ranker.score(users[0], topics[:5] + ["no-such-topic"])
    assert probs.shape == (6,) and np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    inter = run.read_table("interactions").to_pandas()
    train_users = set(np.asarray(users, dtype=object)[inter.loc[inter["split"] == "train", "user_id"].unique()])
    assert set(ranker.pipeline.fields[0].vocab) == train_users


def test_rerun_resumes_from_the_latest_checkpoint(trained):
    cfg, run, first = trained
    more = cfg.model_copy(deep=True)
    more.ranking.train.epochs = 3
    s = train_ranker.run(more, run)
    assert s["train_run"] == first["train_run"] and s["resumed_after_epochs"] == [2]
    assert [h["epoch"] for h in run.read_json(train_ranker.METRICS_ARTIFACT)["history"]] == [1, 2, 3]
