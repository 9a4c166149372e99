"""Budget pacing: second-price rules, the hindsight bound, the dual controller's budget guarantee."""

import numpy as np
import pytest
from scipy.optimize import linprog

from reco.policy.pacing.auction import second_price
from reco.policy.pacing.config import PacingConfig
from reco.policy.pacing.dual_pacing import DualPacedBidder
from reco.policy.pacing.hindsight import hindsight_optimum
from reco.policy.pacing.market import make_market
from reco.policy.pacing.simulate import plan, run_day, simulate_day, summarize_days


def test_second_price_winner_pays_the_competing_bid():
    won, price = second_price(np.array([1.0, 0.5, 0.7]), np.array([0.6, 0.5, 0.9]))
    assert won.tolist() == [True, False, False]  # a tie goes to the competitor
    assert price.tolist() == [0.6, 0.0, 0.0]


def test_hindsight_optimum_equals_the_lp():
    rng = np.random.default_rng(0)
    for _ in range(5):
        v, d = rng.random(40), rng.random(40) * 0.8
        budget = 0.3 * d[d < v].sum()
        ok = d < v
        lp = linprog(-v[ok], A_ub=d[ok][None, :], b_ub=[budget], bounds=[(0, 1)] * int(ok.sum()), method="highs")
        assert hindsight_optimum(v, d, budget) == pytest.approx(-lp.fun, rel=1e-9)
    assert hindsight_optimum(np.array([1.0]), np.array([2.0]), 10.0) == 0  # cannot win above value


def test_dual_step_raises_lambda_on_overspend_and_lowers_it_on_underspend():
    b = DualPacedBidder(budget=100.0, n_periods=10, step_size=0.5, initial_lambda=1.0)
    b.end_period(20.0)  # target 10: spent twice that
    assert b.lam == pytest.approx(1.0 + 0.5 * (20 - 10) / 10)
    b.end_period(0.0)  # target (100 - 20) / 9
    assert b.lam == pytest.approx(1.5 - 0.5)
    for _ in range(5):
        b.end_period(0.0)
    assert b.lam == 0.0  # never negative
    np.testing.assert_allclose(b.bids(np.array([2.0, 4.0])), [2.0, 4.0])


@pytest.mark.parametrize("budget_share, step", [(0.3, 0.3), (0.05, 2.0), (0.9, 0.05), (1.5, 0.3), (0.01, 5.0)])
def test_paced_bidder_never_spends_more_than_budget_plus_one_period(budget_share, step):
    cfg = PacingConfig(
        periods=48, auctions_per_period=150, budget_share=budget_share, step_size=step, traffic_swing=0.8
    )
    budget, _ = plan(cfg)
    for seed in range(4):
        stream = make_market(cfg, seed)
        trace = run_day(stream, DualPacedBidder(budget, cfg.periods, step), budget)
        assert trace.spend.sum() <= budget + trace.spend.max() + 1e-9
        assert (
            trace.value.sum()
            <= hindsight_optimum(stream.value, stream.competing_bid, budget) + trace.value.max() + 1e-9
        )


def test_paced_bidder_beats_the_baselines_and_tracks_the_budget():
    cfg = PacingConfig(periods=48, auctions_per_period=300, seeds=3)
    days = [simulate_day(cfg, seed) for seed in (1, 2, 3)]
    s = summarize_days(days)
    assert s["paced"]["value_vs_optimum"] > max(s["unpaced"]["value_vs_optimum"], s["throttle"]["value_vs_optimum"])
    assert s["paced"]["value_vs_optimum"] <= 1.0 + 1e-9
    assert 0.9 < s["paced"]["budget_used"] <= 1.0 + s["paced"]["max_overspend"]
    unpaced = days[0]["bidders"]["unpaced"]
    assert unpaced["last_active_period"] < cfg.periods - 1  # truthful bidding runs dry before the day ends
    paced = days[0]["bidders"]["paced"]
    assert paced["last_active_period"] >= cfg.periods - 2
