"""train_ranker on a user's own log described by config alone (ranking.source=tabular), end to end on Ray."""

import json

import numpy as np
import pandas as pd
import pytest

from ray_jobs import train_ranker
from reco.rank.artifact import Ranker
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray

CONFIG = """
run_dir: {run_dir}
ranking:
  source: tabular
  tabular:
    path: data/log.tsv
    labels: [click]
    user_key: user
    item_key: item
    categorical: [device]
    numeric: [price]
    multi_valued: {{tags: ";"}}
    item_features: [price, tags]
    log1p: [price]
    split: time
    time_column: ts
  val_share: 0.15
  test_share: 0.15
  model: {{name: dcnv2, embed_dim: 4, mlp_dims: [16], cross_layers: 1}}
  train: {{epochs: 2, batch_size: 64, lr: 0.01, num_workers: 2, cpus_per_worker: 0.5}}
"""


def write_log(folder, n: int = 600) -> pd.DataFrame:
    """Clicks driven by the item's tag, its price and the device: learnable in two epochs."""
    rng = np.random.default_rng(0)
    item = rng.integers(0, 30, n)
    device = rng.choice(["phone", "desktop", "tv"], n)
    price = np.round(10 + item * 3.0, 1)
    logit = 2.5 * (item % 2 == 0) - 1.5 * (device == "tv") - 0.02 * price + rng.normal(0, 0.5, n)
    df = pd.DataFrame(
        {
            "ts": np.arange(n),
            "user": [f"u{u}" for u in rng.integers(0, 50, n)],
            "item": [f"i{i}" for i in item],
            "device": device,
            "price": price,
            "tags": np.where(item % 2 == 0, "sale;new", "new"),
            "click": (logit > np.median(logit)).astype(int),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "log.tsv", sep="\t", index=False)
    return df


def test_the_job_trains_on_a_tabular_log_and_serves_raw_ids(ray_session, tmp_path, capsys):
    df = write_log(tmp_path / "data")
    cfg = tmp_path / "rank.yaml"
    cfg.write_text(CONFIG.format(run_dir=tmp_path / "run"))
    assert train_ranker.main(["--config", str(cfg)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == {"train": 420, "validation": 90, "test": 90} and summary["epochs_run"] == 2
    test = summary["test"]["ctr"]["click"]
    assert test["auc"] > 0.7 and np.isfinite(test["gauc"]) and test["rows"] == 90
    run = RunDir(str(tmp_path / "run"))
    assert run.read_table(train_ranker.PREDICTIONS_ARTIFACT).num_rows == 90
    ranker = Ranker.load(run.uri)
    cheap_sale, dear_plain = ranker.score("u1", ["i0", "i29", "no-such-item"])[:2]
    assert cheap_sale > dear_plain  # the catalogue holds each item's price (log1p) and tags
    frame = df.tail(90).drop(columns="click")
    probs = ranker.score_frame(frame)
    assert probs.shape == (90, 1) and ((probs >= 0) & (probs <= 1)).all()

    # a declared column the file lacks: one line naming file and column, exit code 2, before any Ray work
    df.drop(columns="device").to_csv(tmp_path / "data" / "log.tsv", sep="\t", index=False)
    assert train_ranker.main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "log.tsv: column 'device' (ranking.tabular.categorical) not found" in err
