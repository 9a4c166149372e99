"""Calibration: each method lowers ECE on a deliberately over-confident set; ECE and Brier checked."""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss

from reco.rank.calibration import (
    METHODS,
    Calibrator,
    brier,
    calibration_report,
    choose_and_fit,
    expected_calibration_error,
    fit_calibrator,
    reliability_png,
)


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.5, n) - 0.5
    y = (rng.random(n) < expit(true_logit)).astype(float)
    return 3.0 * true_logit + 1.0, y  # too sharp and shifted


def test_ece_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    p, y = rng.random(1000), rng.integers(0, 2, 1000)
    want = 0.0
    for b in range(15):
        m = (p >= b / 15) & ((p < (b + 1) / 15) | (b == 14))
        if m.any():
            want += abs(y[m].mean() - p[m].mean()) * m.mean()
    assert expected_calibration_error(p, y, 15) == pytest.approx(want)
    assert brier(p, y) == pytest.approx(brier_score_loss(y, p))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_lowers_held_out_ece(method):
    z_fit, y_fit = overconfident(5000, 1)
    z_test, y_test = overconfident(5000, 2)
    cal = fit_calibrator(method, z_fit, y_fit)
    rep = calibration_report(cal, z_test, y_test)
    assert rep["ece_before"] > 0.05
    assert rep["ece_after"] < rep["ece_before"] / 2
    assert rep["brier_after"] < rep["brier_before"]
    again = Calibrator.from_dict(cal.to_dict())
    assert np.allclose(again.probabilities(z_test), cal.probabilities(z_test))


def test_isotonic_artifact_matches_sklearn_predictions():
    z, y = overconfident(2000, 3)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(expit(z), y)
    cal = fit_calibrator("isotonic", z, y)
    probe = np.linspace(-8, 8, 101)
    assert np.allclose(cal.probabilities(probe), iso.predict(expit(probe)))


def test_auto_chooses_by_held_out_ece_and_png_is_written():
    z, y = overconfident(4000, 4)
    cal, scores = choose_and_fit("auto", z, y)
    assert set(scores) == {"none", *METHODS}
    assert cal.method == min(scores, key=scores.get) != "none"
    png = reliability_png({"before": (expit(z), y), "after": (cal.probabilities(z), y)})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert fit_calibrator("platt", z, np.zeros_like(y)).method == "none"  # one class: nothing to fit
