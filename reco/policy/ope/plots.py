"""PNG plots of the off-policy evaluation (matplotlib Agg): estimates against the OBD truth or the
logging policy's own value, and the synthetic study's estimates against each target's true value."""

from __future__ import annotations

from reco.plots import figure_png, plt


def _estimates_png(result: dict, value: float, ci, reference: str, color: str, ylabel: str, title: str) -> bytes:
    """Each estimator's estimate and interval beside a reference value and its interval as a band."""
    names = list(result["estimators"])
    fig, ax = plt.subplots(figsize=(6.5, 4.0), dpi=110)
    ax.axhspan(ci[0], ci[1], color=color, alpha=0.15, label=f"{reference} 95% CI")
    ax.axhline(value, color=color, lw=1.5, label=f"{reference} {value:.4f}")
    for i, n in enumerate(names):
        e = result["estimators"][n]
        ax.errorbar(
            i,
            e["estimate"],
            yerr=[[e["estimate"] - e["ci"][0]], [e["ci"][1] - e["estimate"]]],
            fmt="o",
            capsize=4,
            color="tab:blue",
        )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    return figure_png(fig)


def obd_estimates_png(result: dict) -> bytes:
    """OBD: the estimates against the on-policy truth (the BTS logs)."""
    return _estimates_png(
        result, result["truth"], result["truth_ci"], "truth (bts logs)", "tab:green",
        "estimated click rate of BTS", "OBD: BTS policy value estimated from the random logs",
    )  # fmt: skip


def logs_estimates_png(result: dict) -> bytes:
    """Your own logs: the estimates against the logging policy's own value."""
    base = result["logging_policy"]
    rounds = result["data"].get("evaluated_rounds", result["data"]["rounds"])
    title = f"Target {result['target'].get('label', '?')} on {rounds:,} evaluated rounds"
    return _estimates_png(
        result, base["value"], base["ci"], "logging policy", "tab:gray", "estimated mean reward", title
    )


def synthetic_png(summary: dict) -> bytes:
    """Per target policy: each estimator's mean +/- sd over replicates, minus the truth."""
    targets = list(summary)
    estimators = list(summary[targets[0]])
    fig, ax = plt.subplots(figsize=(7, 4.0), dpi=110)
    width = 0.8 / len(estimators)
    for j, est in enumerate(estimators):
        xs = [i + (j - (len(estimators) - 1) / 2) * width for i in range(len(targets))]
        bias = [summary[t][est]["bias"] for t in targets]
        sd = [summary[t][est]["sd"] for t in targets]
        ax.errorbar(xs, bias, yerr=sd, fmt="o", capsize=3, label=est)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(targets)), targets)
    ax.set_ylabel("estimate - true value (mean +/- sd)")
    ax.set_title("Synthetic bandit: estimator error over replicates")
    ax.legend(fontsize=8, ncol=len(estimators), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    return figure_png(fig)
