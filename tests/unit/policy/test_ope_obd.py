"""Truth check 2 on the Open Bandit Dataset sample: the target policy, the truth, IPW by hand, intervals."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from reco.errors import DataError
from reco.policy.ope.bootstrap import paired_bootstrap
from reco.policy.ope.config import EstimatorConfig, RewardModelConfig
from reco.policy.ope.estimators import ipw, ope_inputs
from reco.policy.ope.logged_data import read_obd
from reco.policy.ope.obd_target import (
    OBDEvaluation,
    assemble_result,
    empirical_action_dist,
    on_policy_truth,
    per_row_dist,
    relative_error,
    time_block,
    time_edges,
)
from reco.policy.ope.reward_model import cross_fit


@pytest.fixture(scope="module")
def logs(shared_data):
    root = str(shared_data / "obd")
    rnd, cats = read_obd(root, "random", "all")
    bts, _ = read_obd(root, "bts", "all", categories=cats)
    raw_rnd = pd.read_csv(shared_data / "obd" / "random" / "all" / "all.csv", index_col=0)
    raw_bts = pd.read_csv(shared_data / "obd" / "bts" / "all" / "all.csv", index_col=0)
    return rnd, bts, raw_rnd, raw_bts


def test_target_is_the_bts_action_frequency_per_position(logs):
    rnd, bts, _, raw = logs
    pi = empirical_action_dist(bts, 3)
    assert pi.shape == (1, 3, 80)
    np.testing.assert_allclose(pi.sum(axis=2), 1.0)
    at1 = raw[raw.position == 1].item_id.value_counts(normalize=True)
    assert pi[0, 0, 7] == pytest.approx(at1[7])  # the item BTS showed most at position 1
    # why not the mean logged propensity: it is size-biased and does not sum to one
    assert raw[raw.position == 1].groupby("item_id").propensity_score.mean().sum() > 2


def test_daily_slices_follow_the_calendar(logs):
    rnd, bts, raw_rnd, raw_bts = logs
    edges = time_edges([rnd, bts], 7)
    days = pd.to_datetime(raw_bts.timestamp).dt.day.to_numpy()
    block = time_block(bts, edges)
    assert block.min() == 0 and block.max() == 6
    assert np.mean(block == days - 24) > 0.99  # slices of the week's span are (almost exactly) its days
    pi = empirical_action_dist(bts, 3, edges)
    np.testing.assert_allclose(pi.sum(axis=2), 1.0)
    assert (
        pi[1, 0, 7] > 5 * pi[3, 0, 7]
    )  # item 7 at position 1: 18% of rows on 25 Nov, 1% on 27 Nov: the policy drifted


@pytest.mark.parametrize("blocks", [1, 7])
def test_ipw_on_obd_equals_the_formula(logs, blocks):
    rnd, bts, raw_rnd, raw_bts = logs
    edges = time_edges([rnd, bts], blocks)
    value = ipw(ope_inputs(rnd, per_row_dist(empirical_action_dist(bts, 3, edges), rnd, edges))).value()
    # the same with pandas from the raw CSVs: share of bts rows per (slice, position) showing each item
    shown = pd.DataFrame(
        {"b": time_block(bts, edges), "pos": raw_bts.position.to_numpy(), "item": raw_bts.item_id.to_numpy()}
    )
    freq = shown.groupby(["b", "pos"])["item"].value_counts(normalize=True)
    keys = pd.MultiIndex.from_arrays([time_block(rnd, edges), raw_rnd.position.to_numpy(), raw_rnd.item_id.to_numpy()])
    pi = freq.reindex(keys, fill_value=0.0).to_numpy()
    assert value == pytest.approx(np.mean(raw_rnd.click.to_numpy() * pi / raw_rnd.propensity_score.to_numpy()))
    assert 0.001 < value < 0.02


def test_truth_is_the_bts_click_rate(logs):
    _, bts, _, _ = logs
    truth = on_policy_truth(bts, draws=500, seed=0)
    assert truth["value"] == pytest.approx(42 / 10_000) and truth["clicks"] == 42
    lo, hi = truth["ci"]
    assert lo < 0.0042 < hi and hi - lo > 0.002  # 42 clicks: the truth itself is uncertain by about +-30%


def test_refitting_the_model_per_draw_widens_the_direct_method_interval(logs):
    rnd, bts, _, _ = logs
    rnd, bts = rnd.subset(np.arange(2_000)), bts.subset(np.arange(2_000))
    cfg = RewardModelConfig(cs=[0.1])
    ev = OBDEvaluation(rnd, bts, time_edges([rnd, bts], 1), cfg, EstimatorConfig())
    q_hat = cross_fit(rnd, cfg)
    fixed = paired_bootstrap(lambda r, t: ev.estimates(r, t, q_hat), rnd.n, bts.n, draws=20, seed=0)
    refit = paired_bootstrap(lambda r, t: ev.estimates(r, t, None), rnd.n, bts.n, draws=20, seed=0)
    assert set(refit) == {"ipw", "snipw", "dm", "dr", "switch_dr"}
    np.testing.assert_allclose(refit["ipw"], fixed["ipw"])  # same resamples; IPW has no model
    assert refit["dm"].std() > 2 * fixed["dm"].std()  # holding the model fixed hides its noise


def test_result_uses_refit_intervals_for_model_based_estimators():
    truth = {"value": 0.004, "ci": [0.003, 0.005], "clicks": 40, "rows": 10_000}
    est = {"ipw": 0.005, "dm": 0.0035}
    row_ci = {"ipw": (0.003, 0.007), "dm": (0.0034, 0.0036)}
    out = assemble_result(truth, est, row_ci, {"ipw": (0.0, 1.0), "dm": (0.002, 0.005)}, {"max": 1.0})
    assert out["estimators"]["ipw"]["ci"] == [0.003, 0.007] and out["estimators"]["ipw"]["ci_kind"] == "rows"
    assert out["estimators"]["dm"]["ci"] == [0.002, 0.005] and out["estimators"]["dm"]["ci_model_fixed"] == [
        0.0034,
        0.0036,
    ]
    assert out["estimators"]["dm"]["covers_truth"] and out["estimators"]["ipw"]["rel_error"] == pytest.approx(0.25)
    assert relative_error(0.0042, 0.0042) == 0


def test_too_many_time_slices_are_refused(logs):
    rnd, bts, _, _ = logs
    with pytest.raises(DataError, match="no rows in time slice .*use fewer ope.obd.time_blocks"):
        empirical_action_dist(bts, 3, time_edges([rnd, bts], 5_000))
    with pytest.raises(DataError, match="needs timestamps"):
        time_edges([dataclasses.replace(rnd, timestamp=None)], 7)
