"""The offline optimum with hindsight: the most value any budget-feasible bidder could have won.

Knowing every auction of the day in advance, winning auction i yields value v_i at cost d_i (its
competing bid). The LP relaxation "maximise sum v_i x_i subject to sum d_i x_i <= budget,
0 <= x_i <= 1" is a fractional knapsack, solved exactly by taking auctions in decreasing v_i / d_i
until the budget runs out (the last one fractionally), so it bounds every real bidder from above.
Only auctions with d_i < v_i are eligible: every bidder here bids at most its value, so it can
never win the others.
"""

from __future__ import annotations

import numpy as np


def hindsight_optimum(values: np.ndarray, competing_bid: np.ndarray, budget: float) -> float:
    """Upper bound on value won with total price <= budget (greedy = LP optimum)."""
    ok = competing_bid < values
    v, d = values[ok], competing_bid[ok]
    order = np.argsort(-(v / d), kind="stable")
    v, d = v[order], d[order]
    spend = np.cumsum(d)
    full = int(np.searchsorted(spend, budget, side="right"))  # auctions taken whole
    value = float(v[:full].sum())
    if full < v.size:
        left = budget - (spend[full - 1] if full else 0.0)
        value += float(v[full] * left / d[full])
    return value
