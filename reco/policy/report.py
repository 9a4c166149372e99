"""The OPE / bandit / pacing report: text tables (Markdown-compatible), the headline figures, and
the Markdown page that embeds the plots. The job writes the page; the bench prints the tables
and the headline as its final JSON line."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from reco.policy.bandits.factory import POLICIES
from reco.policy.ope.estimators import ESTIMATORS
from reco.policy.ope.synthetic_bandit import TARGETS
from reco.policy.pacing.simulate import BIDDERS


def _ordered(d: dict, order: Collection[str]) -> list[tuple[str, Any]]:
    """Items in the canonical order (a JSON round trip sorts keys), unknown keys last."""
    return [(k, d[k]) for k in order if k in d] + [(k, v) for k, v in d.items() if k not in order]


def _f(x: float, digits: int = 5) -> str:
    return f"{x:.{digits}f}"


def obd_table(obd: dict) -> list[str]:
    lo, hi = obd["truth_ci"]
    rows = [
        f"OBD (all campaign): truth = BTS click rate in its own logs {_f(obd['truth'])} "
        f"({obd['truth_clicks']} clicks / {obd['rows']:,} rows, 95% CI {_f(lo)}..{_f(hi)})",
        "",
        "| estimator | estimate | 95% CI | CI from | covers truth | relative error |",
        "|---|---:|---|---|---|---:|",
    ]
    for name, e in _ordered(obd["estimators"], ESTIMATORS):
        rows.append(
            f"| {name} | {_f(e['estimate'])} | {_f(e['ci'][0])}..{_f(e['ci'][1])} | {e['ci_kind']} | "
            f"{'yes' if e['covers_truth'] else 'no'} | {e['rel_error']:.3f} |"
        )
    w = obd["weights"]
    rows += [
        "",
        f"target policy: {obd.get('target_policy', '?')}",
        f"importance weights: max {w['max']:.2f}, mean {w['mean']:.3f}, effective sample size {w['ess']:,.0f} of "
        f"{w['rows']:,}",
    ]
    week = obd.get("week_average_target")
    if week and obd.get("time_blocks", 1) > 1:
        rows.append(
            "with one week-average target policy instead: "
            + ", ".join(f"{n} {_f(v)}" for n, v in _ordered(week, ESTIMATORS))
        )
    return rows


def replay_table(replay: dict) -> list[str]:
    seeds = next(iter(replay.values()))["seeds"]
    rows = [
        f"Means over {seeds} replays (policy randomness) of the same rows; Wilson interval of one replay, averaged.",
        "",
        "| policy | matched rows | clicks | click rate | 95% CI |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in _ordered(replay, POLICIES):
        rows.append(
            f"| {name} | {r['matches']:.0f} | {r['clicks']:.1f} | {_f(r['value'])} | "
            f"{_f(r['ci'][0])}..{_f(r['ci'][1])} |"
        )
    return rows


def synthetic_table(syn: dict) -> list[str]:
    rows = [
        f"Synthetic bandit: {syn['replicates']} logs of {syn['n_rounds']:,} rounds each; t = bias / its standard "
        "error.",
        "Intervals: per-log row bootstrap with that log's cross-fitted reward model held fixed (hence DM's low "
        "coverage).",
        "",
        "| target | truth | estimator | bias | sd | rmse | t | 95% CI coverage |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for target, by in _ordered(syn["summary"], TARGETS):
        for est, s in _ordered(by, ESTIMATORS):
            rows.append(
                f"| {target} | {_f(s['truth'], 4)} | {est} | {s['bias']:+.4f} | {s['sd']:.4f} | {s['rmse']:.4f} | "
                f"{s['t']:+.2f} | {s['coverage']:.2f} |"
            )
    return rows


def bandit_table(bandits: dict) -> list[str]:
    rows = ["| policy (online, synthetic) | cumulative regret | sd over seeds | seeds |", "|---|---:|---:|---:|"]
    for name, s in _ordered(bandits, POLICIES):
        rows.append(f"| {name} | {s['cumulative_regret']:.1f} | {s['sd']:.1f} | {s['seeds']} |")
    return rows


def pacing_table(pacing: dict) -> list[str]:
    rows = [
        f"Budget {pacing['budget']:.2f} per day ({pacing['budget_share']:.0%} of truthful spend on an average day), "
        f"{pacing['days']} simulated days",
        "",
        "| bidder | value / hindsight optimum | budget used | mean overspend | worst overspend |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in _ordered(pacing["summary"], BIDDERS):
        rows.append(
            f"| {name} | {s['value_vs_optimum']:.3f} | {s['budget_used']:.3f} | {s['overspend']:.4f} | "
            f"{s['max_overspend']:.4f} |"
        )
    return rows


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The bench's final JSON line."""
    obd = summary["obd"]
    out: dict[str, Any] = {"obd": {"truth": obd["truth"]}}
    for name, e in _ordered(obd["estimators"], ESTIMATORS):
        out["obd"][name] = {"estimate": e["estimate"], "ci": e["ci"], "rel_error": e["rel_error"]}
    out["pacing"] = {
        n: {"value_vs_optimum": s["value_vs_optimum"], "overspend": s["overspend"]}
        for n, s in _ordered(summary["pacing"]["summary"], BIDDERS)
    }
    out["bandit_regret"] = {
        n: summary["bandits"][n]["cumulative_regret"]
        for n in ("thompson", "epsilon_greedy", "random")
        if n in summary["bandits"]
    }
    return out


def report_md(summary: dict[str, Any]) -> str:
    lines = [
        "# Off-policy evaluation, bandits and pacing",
        "",
        "## Open Bandit Dataset: the BTS policy's value from the random logs",
        "",
        "![OBD estimates](ope_obd.png)",
        "",
        *obd_table(summary["obd"]),
        "",
        "Replay evaluation of learning policies on the same random logs:",
        "",
        *replay_table(summary["replay"]),
        "",
        "## Known truth: synthetic bandit",
        "",
        "![synthetic](ope_synthetic.png)",
        "",
        *synthetic_table(summary["synthetic"]),
        "",
        "## Thompson sampling: online regret",
        "",
        "![regret](bandit_regret.png)",
        "",
        *bandit_table(summary["bandits"]),
        "",
        "## Budget pacing",
        "",
        "![spend](pacing_spend.png)",
        "",
        *pacing_table(summary["pacing"]),
        "",
    ]
    return "\n".join(lines)
