"""The bidders pacing is compared with.

- Unpaced: bids its full value in every auction until the budget is gone, typically by
  mid-day, then sits out the (often cheaper) rest of the day.
- Fixed throttle: bids its value in a fixed random share of auctions, the share planned in
  advance from an average day (budget / what truthful bidding spends on an average day). It
  spreads spend over the day but cannot react when the day is busier or quieter than planned.
"""

from __future__ import annotations

import numpy as np


class UnpacedBidder:
    name = "unpaced"

    def bids(self, values: np.ndarray) -> np.ndarray:
        return values.copy()

    def end_period(self, spend: float) -> None:
        return None


class ThrottledBidder:
    name = "throttle"

    def __init__(self, rate: float, seed: int):
        self.rate = min(max(rate, 0.0), 1.0)
        self.rng = np.random.default_rng(seed)

    def bids(self, values: np.ndarray) -> np.ndarray:
        return np.where(self.rng.random(values.shape[0]) < self.rate, values, 0.0)

    def end_period(self, spend: float) -> None:
        return None
