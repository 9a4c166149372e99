"""Spend against budget over one simulated day, per bidder, with the paced bidder's multiplier."""

from __future__ import annotations

import numpy as np

from reco.plots import figure_png, plt


def spend_png(day: dict) -> bytes:
    budget = day["budget"]
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=110)
    n = len(next(iter(day["bidders"].values()))["spend_by_period"])
    periods = np.arange(1, n + 1)
    ax.plot(periods, periods / n, "k--", lw=1, label="even spend plan")
    ax.axhline(1.0, color="gray", lw=0.8)
    for name, b in day["bidders"].items():
        ax.plot(
            periods, np.cumsum(b["spend_by_period"]) / budget, label=f"{name} ({b['value_vs_optimum']:.0%} of optimum)"
        )
    ax.set_xlabel("period")
    ax.set_ylabel("cumulative spend / budget")
    ax2 = ax.twinx()
    lam = np.asarray(day["bidders"]["paced"]["lambda_by_period"], dtype=float)
    ax2.plot(periods, np.where(np.isfinite(lam), lam, np.nan), color="tab:purple", alpha=0.35, lw=1)
    ax2.set_ylabel("paced bidder's lambda", color="tab:purple")
    ax.set_title("Budget pacing: spend over one simulated day")
    ax.legend(fontsize=8, loc="upper left")
    return figure_png(fig)
