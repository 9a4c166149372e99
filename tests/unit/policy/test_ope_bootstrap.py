"""Bootstrap intervals: correct width on a known case, ratio resampling for SNIPW, draws that split over workers."""

import numpy as np
import pytest

from reco.policy.ope.bootstrap import (
    bootstrap_values,
    draw_seeds,
    estimate_with_intervals,
    paired_bootstrap,
    percentile_interval,
    split_draws,
)
from reco.policy.ope.estimators import EstimatorTerms


def test_interval_of_a_mean_has_the_textbook_width():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2_000)
    terms = {"mean": EstimatorTerms(x, np.ones_like(x))}
    out = estimate_with_intervals(terms, draws=2_000, seed=1)["mean"]
    lo, hi = out["ci"]
    se = x.std() / np.sqrt(x.size)
    assert out["estimate"] == pytest.approx(x.mean())
    assert lo < x.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_ratio_estimators_are_resampled_as_ratios():
    # SNIPW on a log where the ratio is constant: every resample gives the same value, a mean would not
    w = np.array([1.0, 2.0, 4.0, 8.0])
    terms = {"ratio": EstimatorTerms(0.3 * w, w)}
    vals = bootstrap_values(terms, draws=200, seed=0)["ratio"]
    np.testing.assert_allclose(vals, 0.3)


def test_draws_split_over_chunks():
    assert split_draws(10, 3) == [4, 3, 3] and sum(split_draws(2_000, 4)) == 2_000
    assert split_draws(2, 5) == [1, 1]
    seeds = draw_seeds(0, 4)
    assert len(set(seeds)) == 4 and seeds == draw_seeds(0, 4)
    x = np.arange(100, dtype=float)
    terms = {"m": EstimatorTerms(x, np.ones_like(x))}
    a, b = (bootstrap_values(terms, 50, s)["m"] for s in seeds[:2])
    assert not np.allclose(a, b)  # chunks draw different resamples


def test_percentile_interval_drops_undefined_draws():
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5) == pytest.approx((1.5, 2.5))
    assert np.isnan(percentile_interval(np.array([np.nan]))[0])


def test_paired_bootstrap_resamples_both_samples():
    a, b = np.arange(50, dtype=float), np.arange(1000, 1030, dtype=float)
    seen = []

    def estimate(rows, target_rows):
        seen.append((rows.size, target_rows.size))
        return {"a": a[rows].mean(), "b": b[target_rows].mean()}

    out = paired_bootstrap(estimate, 50, 30, draws=40, seed=0)
    assert seen == [(50, 30)] * 40
    assert out["a"].std() > 0 and out["b"].std() > 0
    assert out["b"].mean() == pytest.approx(b.mean(), abs=2)
