"""Budget pacing by a Lagrange multiplier on the budget constraint, updated by a dual step.

Maximising value won minus price paid subject to spend <= budget gives, for a multiplier
lambda >= 0 on the budget, the bid ``value / (1 + lambda)``: win exactly the auctions whose
value-per-cost ratio clears ``1 + lambda``. The right lambda is unknown in advance, so after each
period it takes a (sub)gradient step on the dual (Balseiro & Gur, 2019): up when the period spent
more than its share of what is left, down (not below zero) when it spent less,

    target = remaining budget / remaining periods
    lambda <- max(0, lambda + step * (spend - target) / target)

Normalising by the target makes ``step`` unitless. The spend target is re-planned from what is
left, so an early overspend is made up for later instead of compounding.
"""

from __future__ import annotations

import numpy as np


class DualPacedBidder:
    name = "paced"

    def __init__(self, budget: float, n_periods: int, step_size: float, initial_lambda: float = 0.0):
        self.budget = budget
        self.n_periods = n_periods
        self.step_size = step_size
        self.lam = initial_lambda
        self.spent = 0.0
        self.period = 0

    def bids(self, values: np.ndarray) -> np.ndarray:
        return values / (1.0 + self.lam)

    def end_period(self, spend: float) -> None:
        target = max(self.budget - self.spent, 0.0) / max(self.n_periods - self.period, 1)
        self.spent += spend
        self.period += 1
        if target <= 0:
            self.lam = np.inf  # budget gone: bid nothing
            return
        self.lam = max(0.0, self.lam + self.step_size * (spend - target) / target)
