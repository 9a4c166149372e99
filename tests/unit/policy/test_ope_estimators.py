"""The estimators on a four-row log computed by hand, and the checks that reject bad inputs."""

import numpy as np
import pytest

from reco.errors import DataError
from reco.policy.ope.estimators import all_estimators, dm, dr, importance_weights, ipw, ope_inputs, snipw, switch_dr
from reco.policy.ope.logged_data import LoggedFeedback


def _log(propensity=(0.5, 0.25, 0.5, 0.75)) -> LoggedFeedback:
    return LoggedFeedback(
        action=np.array([0, 1, 0, 1]),
        reward=np.array([1.0, 0.0, 0.0, 1.0]),
        propensity=np.array(propensity, dtype=float),
        position=np.zeros(4, dtype=np.int64),
        context=np.zeros((4, 1)),
        n_actions=2,
        source="hand log",
    )


DIST = np.tile([0.8, 0.2], (4, 1))
Q_HAT = np.array([[0.6, 0.3], [0.5, 0.5], [0.2, 0.4], [0.1, 0.9]])


def test_estimators_match_hand_computation():
    inp = ope_inputs(_log(), DIST, Q_HAT)
    # w = pi_e(a|x) / pi_b(a|x) = [0.8/0.5, 0.2/0.25, 0.8/0.5, 0.2/0.75]
    np.testing.assert_allclose(inp.weight, [1.6, 0.8, 1.6, 0.2 / 0.75])
    assert ipw(inp).value() == pytest.approx((1.6 + 0.2 / 0.75) / 4)
    assert snipw(inp).value() == pytest.approx((1.6 + 0.2 / 0.75) / (4 + 0.2 / 0.75))
    # DM: mean over rows of 0.8 q0 + 0.2 q1 = mean([0.54, 0.5, 0.24, 0.26])
    assert dm(inp).value() == pytest.approx(1.54 / 4)
    # DR: DM + mean(w (r - q(x, a))) with residuals [0.4, -0.5, -0.2, 0.1]
    correction = 1.6 * 0.4 + 0.8 * -0.5 + 1.6 * -0.2 + (0.2 / 0.75) * 0.1
    assert dr(inp).value() == pytest.approx((1.54 + correction) / 4)
    # switch-DR with tau = 1 keeps the correction of rows 2 and 4 only (weights 0.8 and 0.27)
    assert switch_dr(inp, tau=1.0).value() == pytest.approx((1.54 + 0.8 * -0.5 + (0.2 / 0.75) * 0.1) / 4)
    # with a tau above every weight it is DR
    assert switch_dr(inp, tau=10.0).value() == pytest.approx(dr(inp).value())


def test_clipping_caps_the_weights():
    inp = ope_inputs(_log(), DIST, Q_HAT)
    assert ipw(inp, clip=1.0).value() == pytest.approx((1.0 + 0.2 / 0.75) / 4)
    assert ipw(inp, clip=100.0).value() == pytest.approx(ipw(inp).value())


def test_target_equal_to_logging_policy_gives_the_logged_mean():
    log = _log(propensity=(0.5, 0.5, 0.5, 0.5))
    inp = ope_inputs(log, np.full((4, 2), 0.5))
    assert ipw(inp).value() == pytest.approx(log.reward.mean())
    assert snipw(inp).value() == pytest.approx(log.reward.mean())
    assert set(all_estimators(inp)) == {"ipw", "snipw"}  # no reward model: no DM / DR


@pytest.mark.parametrize(
    "bad, message",
    [
        ((0.5, 0.0, 0.5, 0.5), r"propensities outside \(0, 1\]"),
        ((0.5, 1.5, 0.5, 0.5), r"propensities outside \(0, 1\]"),
        ((0.5, np.nan, 0.5, 0.5), "missing or non-finite propensities"),
    ],
)
def test_bad_propensities_are_rejected(bad, message):
    with pytest.raises(DataError, match=message):
        _log(propensity=bad)
    with pytest.raises(DataError, match=message):
        importance_weights(np.full(4, 0.5), np.array(bad))


def test_bad_target_distributions_are_rejected():
    with pytest.raises(DataError, match="sum to"):
        ope_inputs(_log(), np.tile([0.8, 0.3], (4, 1)))
    with pytest.raises(DataError, match="shape"):
        ope_inputs(_log(), np.tile([0.8, 0.2], (3, 1)))
    with pytest.raises(DataError, match="non-negative"):
        ope_inputs(_log(), np.tile([1.2, -0.2], (4, 1)))
    with pytest.raises(DataError, match="reward-model predictions"):
        dm(ope_inputs(_log(), DIST))
