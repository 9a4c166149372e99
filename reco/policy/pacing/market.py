"""A simulated day of auction opportunities for one advertiser.

Traffic follows a daily curve (a quiet night, a busy evening) and each simulated day's volume is
scaled by a random factor, so a day is never exactly the average day a fixed plan was made for.
Every opportunity has the advertiser's predicted value (predicted CTR x value per click, CTRs
from a Beta distribution) and the highest competing bid, log-normal around a level that also
swings over the day. Only those two numbers matter in a second-price auction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.policy.pacing.config import PacingConfig


@dataclass(frozen=True)
class AuctionStream:
    period: np.ndarray  # (m,) int, sorted
    value: np.ndarray  # (m,) the advertiser's value of winning
    competing_bid: np.ndarray  # (m,) highest other bid: the price if we win
    n_periods: int

    def bounds(self) -> np.ndarray:
        """Start offsets of each period's auctions, plus the end: period t is [b[t], b[t+1])."""
        return np.searchsorted(self.period, np.arange(self.n_periods + 1))


def daily_curve(n_periods: int, swing: float, phase: float = 0.0) -> np.ndarray:
    """1 + swing * a smooth day shape (low at night, high in the evening), mean 1."""
    t = (np.arange(n_periods) + 0.5) / n_periods
    return 1 + swing * np.sin(2 * np.pi * (t - 0.4 - phase))


def make_market(cfg: PacingConfig, seed: int, volume: float | None = None) -> AuctionStream:
    """One day. ``volume`` scales traffic (None: drawn log-normal around 1 with ``day_volume_sigma``)."""
    rng = np.random.default_rng(seed)
    if volume is None:
        volume = float(np.exp(cfg.day_volume_sigma * rng.standard_normal() - cfg.day_volume_sigma**2 / 2))
    counts = rng.poisson(cfg.auctions_per_period * volume * daily_curve(cfg.periods, cfg.traffic_swing))
    period = np.repeat(np.arange(cfg.periods), counts)
    m = period.size
    value = rng.beta(cfg.ctr_alpha, cfg.ctr_beta, m) * cfg.value_per_click
    level = cfg.competing_median * daily_curve(cfg.periods, cfg.competition_swing, phase=0.1)[period]
    competing = level * np.exp(cfg.competing_sigma * rng.standard_normal(m))
    return AuctionStream(period, value, competing, cfg.periods)
