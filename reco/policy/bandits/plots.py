"""The regret plot: mean cumulative regret per policy over the online simulation's rounds."""

from __future__ import annotations

import numpy as np

from reco.plots import figure_png, plt


def regret_png(summary: dict[str, dict]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for name, s in summary.items():
        curve = np.asarray(s["curve"])
        rounds = np.asarray(s.get("rounds", np.arange(1, curve.size + 1)))  # a downsampled curve names its rounds
        ax.plot(rounds, curve, label=f"{name} ({s['cumulative_regret']:.0f})")
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative expected regret")
    ax.set_title(f"Online simulation, mean over {next(iter(summary.values()))['seeds']} seeds")
    ax.legend(fontsize=8)
    return figure_png(fig)
