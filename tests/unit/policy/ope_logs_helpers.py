"""Shared by the own-logs tests: a synthetic log in the generic layout and a small ranker that speaks its ids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from reco import artifacts
from reco.policy.ope.config import LogsConfig
from reco.policy.ope.synthetic_log import COLUMNS, SyntheticLog, synthetic_log_frame
from reco.rank.artifact import Ranker
from reco.rank.calibration import Calibrator
from reco.rank.catalog import Catalog
from reco.rank.config import RankFeatureConfig, RankModelConfig
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec
from reco.rank.models import build_model
from reco.run_dir import RunDir

RANKER_SPEC = FeatureSpec(
    (
        FieldSpec("user_id", "cat", "user"),
        FieldSpec("item_id", "cat", "item"),
        FieldSpec("x0", "dense", "context"),
        FieldSpec("hour", "cat", "context"),
    ),
    user_key="user_id",
    item_key="item_id",
)
MODEL = RankModelConfig(name="deepfm", embed_dim=4, mlp_dims=[8])


def synthetic_log(n_rounds: int = 1_000, seed: int = 0) -> SyntheticLog:
    """The synthetic log, plus an hour-of-day column the ranker's ``hour`` field can be mapped to."""
    syn = synthetic_log_frame(n_rounds, seed=seed)
    syn.frame["hour_of_day"] = (syn.frame["timestamp"] // 3600) % 24
    return syn


def logs_config(path: str | Path, **columns) -> LogsConfig:
    return LogsConfig(path=str(path), columns={**COLUMNS, **columns})


def toy_ranker(frame: pd.DataFrame, seed: int = 0) -> Ranker:
    """An (untrained) DeepFM over user, item, x0 and hour, with catalogues of the log's users and actions."""
    train = frame.rename(columns={"action": "item_id"}).assign(hour=frame["hour_of_day"])
    pipe = FeaturePipeline.fit(train, RANKER_SPEC, RankFeatureConfig())
    torch.manual_seed(seed)
    model = build_model(MODEL, pipe.layout(), 1).eval()
    catalog = Catalog.build(pipe, train[["user_id"]], train[["item_id"]])
    return Ranker(model, MODEL, pipe, catalog, ["click"], [Calibrator("platt", {"a": 2.0, "b": -0.5})], {"data": "toy"})


def write_ranker_run(ranker: Ranker, path: Path) -> str:
    run = RunDir(str(path))
    run.start({})
    run.write_bytes(artifacts.RANKER, ranker.to_bytes(), step="test")
    return str(path)
