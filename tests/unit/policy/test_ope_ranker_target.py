"""The trained ranker as a target: which log column feeds which ranker field, and scores -> distribution."""

import dataclasses

import numpy as np
import pytest

from reco.errors import ArtifactError, ConfigError, DataError
from reco.policy.ope.config import RankerTargetConfig
from reco.policy.ope.logged_feedback import log_columns, read_feedback, write_feedback
from reco.policy.ope.ranker_target import (
    check_items,
    describe,
    load_ranker,
    map_fields,
    ranker_action_dist,
    ranker_scores,
)
from reco.rank.catalog import Catalog
from tests.unit.policy.ope_logs_helpers import logs_config, synthetic_log, toy_ranker, write_ranker_run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranker-target")
    syn = synthetic_log(300, seed=7)
    path = write_feedback(syn.frame, str(tmp / "log.csv"))
    run_dir = write_ranker_run(toy_ranker(syn.frame), tmp / "run")
    cfg = RankerTargetConfig(run_dir=run_dir, fields={"hour": "hour_of_day"})
    return logs_config(path), load_ranker(run_dir), cfg


def _mapped(setup, **changes):
    logs, ranker, cfg = setup
    cfg = cfg.model_copy(update=changes)
    header = log_columns(logs)
    mapping = map_fields(ranker, cfg, header, logs.columns.user, logs.path)
    return logs, ranker, cfg, mapping


def test_the_mapping_names_where_each_field_comes_from(setup):
    logs, ranker, cfg, mapping = _mapped(setup)
    assert mapping.user_field == "user_id" and mapping.user_column == "user_id" and mapping.item_field == "item_id"
    assert mapping.context == {"x0": "x0", "hour": "hour_of_day"}  # x0 by name, hour as mapped
    assert mapping.unknown == () and mapping.log_columns() == ["x0", "hour_of_day"]
    fb = read_feedback(logs, keep=mapping.log_columns())
    assert check_items(ranker, mapping, fb) == 6
    d = describe(ranker, mapping, cfg, 6, 6)
    assert d["user"] == "user_id -> user_id" and d["items_known"] == "6 of 6" and d["model"] == "deepfm"


def test_scores_are_the_serving_scores_of_every_action(setup):
    logs, ranker, cfg, mapping = _mapped(setup)
    fb = read_feedback(logs, keep=mapping.log_columns())
    scores = ranker_scores(ranker, mapping, fb)
    assert scores.shape == (fb.n, 6) and ((scores > 0) & (scores < 1)).all()
    for i in (0, 17, 299):
        ctx = {"x0": fb.extra["x0"][i], "hour": fb.extra["hour_of_day"][i]}
        np.testing.assert_allclose(scores[i], ranker.score(fb.users[i], list(fb.items), ctx), atol=1e-6)
    assert np.ptp(scores, axis=1).mean() > 1e-3  # the actions are told apart


def test_scores_become_a_distribution(setup):
    logs, ranker, cfg, mapping = _mapped(setup)
    fb = read_feedback(logs, keep=mapping.log_columns())
    scores = ranker_scores(ranker, mapping, fb)
    soft = ranker_action_dist(ranker, mapping, fb, cfg)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    np.testing.assert_allclose(soft, scores / scores.sum(axis=1, keepdims=True))  # temperature 1: proportional
    greedy_cfg = cfg.model_copy(update={"mode": "greedy", "epsilon": 0.1})
    greedy = ranker_action_dist(ranker, mapping, fb, greedy_cfg)
    np.testing.assert_allclose(greedy.sum(axis=1), 1.0)
    assert (greedy.argmax(axis=1) == scores.argmax(axis=1)).all()
    np.testing.assert_allclose(greedy.max(axis=1), 0.9 + 0.1 / 6)
    sharp = ranker_action_dist(ranker, mapping, fb, cfg.model_copy(update={"temperature": 0.05}))
    assert sharp.max(axis=1).mean() > soft.max(axis=1).mean()


def test_fields_the_log_cannot_feed_are_errors(setup):
    logs, ranker, cfg = setup
    header = log_columns(logs)
    with pytest.raises(DataError, match=r"no log column for the ranker's field\(s\) \['hour'\].*allow_unknown"):
        map_fields(ranker, cfg.model_copy(update={"fields": {}}), header, "user_id", logs.path)
    with pytest.raises(DataError, match=r"\['user_id'\]: declare ope\.logs\.columns\.user"):
        map_fields(ranker, cfg, header, None, logs.path)
    with pytest.raises(ConfigError, match=r"ope\.target\.ranker\.fields\.weekday: not a field of the ranker"):
        map_fields(ranker, cfg.model_copy(update={"fields": {"weekday": "x1"}}), header, "user_id", logs.path)
    with pytest.raises(
        ConfigError, match=r"fields\.item_id: a item-side field; the ranker takes it from its catalogue"
    ):
        map_fields(ranker, cfg.model_copy(update={"fields": {"item_id": "action"}}), header, "user_id", logs.path)
    with pytest.raises(DataError, match=r"log\.csv: missing column 'hod' \(ope\.target\.ranker\.fields\.hour\)"):
        map_fields(ranker, cfg.model_copy(update={"fields": {"hour": "hod"}}), header, "user_id", logs.path)
    with pytest.raises(ConfigError, match=r"ope\.target\.ranker\.task: 'conversion' is not a task"):
        map_fields(ranker, cfg.model_copy(update={"task": "conversion"}), header, "user_id", logs.path)
    loose = map_fields(ranker, cfg.model_copy(update={"fields": {}, "allow_unknown": True}), header, None, logs.path)
    assert loose.unknown == ("user_id", "hour") and loose.context == {"x0": "x0"}


def test_a_ranker_that_cannot_score_the_actions(setup, tmp_path):
    logs, ranker, cfg, mapping = _mapped(setup)
    fb = read_feedback(logs, keep=mapping.log_columns())
    strangers = dataclasses.replace(fb, items=tuple(f"sku-{i}" for i in range(6)))
    with pytest.raises(DataError, match=r"none of the 6 actions \(e\.g\. 'sku-0'\) is an item of the ranker"):
        check_items(ranker, mapping, strangers)
    no_catalogue = dataclasses.replace(ranker, catalog=Catalog(ranker.pipeline, None, None))
    with pytest.raises(DataError, match="has no user and item catalogue"):
        map_fields(no_catalogue, cfg, log_columns(logs), "user_id", logs.path)
    with pytest.raises(ArtifactError, match="models/ranker.pt"):
        load_ranker(str(tmp_path))
