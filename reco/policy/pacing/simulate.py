"""Run bidders through a simulated day and measure them against the hindsight optimum.

Spend is reported to the bidder at the end of each period (as an ad server's delayed spend
reports are), and the bidder is cut off at the first period boundary at which its budget is
spent. It can therefore overshoot by at most what it spends in one period; the paced bidder
keeps that last period small by shading its bids as the budget runs low.

The budget is ``budget_share`` of what truthful bidding spends on an average day (traffic
volume 1, an independent seed), fixed before the simulated days are drawn; the throttle's
participation rate is planned from that same average day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reco.policy.pacing.auction import second_price
from reco.policy.pacing.baselines import ThrottledBidder, UnpacedBidder
from reco.policy.pacing.config import PacingConfig
from reco.policy.pacing.dual_pacing import DualPacedBidder
from reco.policy.pacing.hindsight import hindsight_optimum
from reco.policy.pacing.market import AuctionStream, make_market

BIDDERS = ("paced", "unpaced", "throttle")


class Bidder(Protocol):
    name: str

    def bids(self, values: np.ndarray) -> np.ndarray: ...

    def end_period(self, spend: float) -> None: ...


@dataclass(frozen=True)
class DayTrace:
    spend: np.ndarray  # (periods,)
    value: np.ndarray  # (periods,)
    wins: np.ndarray  # (periods,)
    lam: np.ndarray  # (periods,) multiplier in force during each period (nan if the bidder has none)


def run_day(stream: AuctionStream, bidder: Bidder, budget: float) -> DayTrace:
    b = stream.bounds()
    spend, value, wins, lam = (np.zeros(stream.n_periods) for _ in range(4))
    spent = 0.0
    for t in range(stream.n_periods):
        lam[t] = getattr(bidder, "lam", np.nan)
        if spent >= budget:
            continue  # cut off at the period boundary
        sl = slice(b[t], b[t + 1])
        won, price = second_price(bidder.bids(stream.value[sl]), stream.competing_bid[sl])
        spend[t], value[t], wins[t] = price.sum(), stream.value[sl][won].sum(), won.sum()
        spent += spend[t]
        bidder.end_period(float(spend[t]))
    return DayTrace(spend, value, wins, lam)


def truthful_spend(stream: AuctionStream) -> float:
    won, price = second_price(stream.value, stream.competing_bid)
    return float(price.sum())


def plan(cfg: PacingConfig) -> tuple[float, float]:
    """(budget, throttle rate), both from an average day drawn with its own seed."""
    average_day = make_market(cfg, seed=cfg.seed + 10_007, volume=1.0)
    full = truthful_spend(average_day)
    budget = cfg.budget_share * full
    return budget, budget / full


def make_bidder(name: str, cfg: PacingConfig, budget: float, rate: float, seed: int) -> Bidder:
    if name == "paced":
        return DualPacedBidder(budget, cfg.periods, cfg.step_size, cfg.initial_lambda)
    if name == "unpaced":
        return UnpacedBidder()
    if name == "throttle":
        return ThrottledBidder(rate, seed)
    raise ValueError(f"unknown bidder {name!r}; expected one of {BIDDERS}")


def simulate_day(cfg: PacingConfig, day_seed: int) -> dict:
    """Every bidder on one day: summary figures and per-period traces."""
    budget, rate = plan(cfg)
    stream = make_market(cfg, day_seed)
    optimum = hindsight_optimum(stream.value, stream.competing_bid, budget)
    out = {
        "budget": budget,
        "throttle_rate": rate,
        "optimum": optimum,
        "auctions": int(stream.value.size),
        "bidders": {},
    }
    for name in BIDDERS:
        trace = run_day(stream, make_bidder(name, cfg, budget, rate, day_seed + 1), budget)
        total = float(trace.spend.sum())
        active = np.flatnonzero(trace.spend > 0)
        out["bidders"][name] = {
            "spend": total,
            "value": float(trace.value.sum()),
            "wins": int(trace.wins.sum()),
            "value_vs_optimum": float(trace.value.sum() / optimum) if optimum > 0 else float("nan"),
            "overspend": max(0.0, total - budget) / budget,
            "budget_used": total / budget,
            "max_period_spend": float(trace.spend.max()),
            "last_active_period": int(active[-1]) if active.size else -1,
            "spend_by_period": trace.spend.tolist(),
            "lambda_by_period": trace.lam.tolist(),
        }
    return out


def day_seeds(cfg: PacingConfig) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence([cfg.seed, 3]).spawn(cfg.seeds)]


def summarize_days(days: list[dict]) -> dict:
    """Mean over days of each bidder's value / optimum, overspend and budget used."""
    out = {}
    for name in BIDDERS:
        rows = [d["bidders"][name] for d in days]
        out[name] = {k: float(np.mean([r[k] for r in rows])) for k in ("value_vs_optimum", "overspend", "budget_used")}
        out[name]["max_overspend"] = float(max(r["overspend"] for r in rows))
        out[name]["days"] = len(rows)
    return out
