"""The OPE / bandit / pacing report: text tables (Markdown-compatible), the headline figures, and
the Markdown page that embeds the plots. The job writes the page; the bench prints the tables
and the headline as its final JSON line.

An estimate is only as meaningful as the data it read, so each off-policy section opens with
:func:`data_table`: the source, the file, the campaign or slice, how many rounds and actions,
and the target policy with its settings. Sections whose study did not run are left out.
"""

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


def _setting(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_setting(x)}" for k, x in v.items()) or "-"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _target_lines(target: dict) -> list[tuple[str, str]]:
    kind = target.get("kind")
    if kind == "obd":
        return [("target policy", f"OBD {target.get('policy', '?')} policy: {target.get('distribution', '?')}")]
    if kind == "bandit":
        fit = (
            f"fitted on the earliest {target['fit_rows']:,} rows ({target['fit_share']:.0%}, by "
            f"{target['ordered_by']}), then frozen; evaluated on the later {target['evaluated_rows']:,}"
            if target["fit_rows"]
            else f"its prior policy (fit_share 0), evaluated on all {target['evaluated_rows']:,} rows"
        )
        rows = [
            ("target policy", f"bandit {target['policy']} ({_setting(target['settings'])})"),
            ("target fitted", fit),
            ("target features", target["features"]),
            (
                "target distribution",
                target["distribution"] + (f", {target['samples']} draws" if target.get("samples") else ""),
            ),
        ]
        return rows
    if kind == "ranker":
        rows = [
            ("target policy", f"ranker of {target['run_dir']} ({target['model']}, trained on {target['trained_on']})"),
            ("target distribution", f"{target['distribution']} over every action, task {target['task']}"),
            ("ranker user", target["user"]),
            ("ranker item", f"{target['item']} ({target['items_known']} actions in its catalogue)"),
            ("ranker context", _setting(target["context"]) if target["context"] else "-"),
        ]
        if target["unknown_fields"]:
            rows.append(("scored as unknown", _setting(target["unknown_fields"])))
        return rows
    return [("target policy", str(target.get("label", "?")))]


def data_table(data: dict, target: dict) -> list[str]:
    """What the estimate read, and which policy it evaluated with which settings."""
    if data.get("source") == "obd":
        rows = [
            ("source", "Open Bandit Dataset layout"),
            ("path", data["path"]),
            ("campaign", data["campaign"]),
            ("rounds", f"{data['rounds']:,} ({data['logging_policy']} logging policy)"),
            ("actions", f"{data['actions']} items, {data['positions']} positions"),
            ("target log", f"{data['target_log']} ({data['target_rounds']:,} rounds)"),
        ]
    else:
        evaluated = data.get("evaluated_rounds", data["rounds"])
        rounds = f"{data['rounds']:,}" + (
            f", {evaluated:,} evaluated" if evaluated != data["rounds"] else ", all evaluated"
        )
        if data.get("rows_in_file", data["rounds"]) != data["rounds"]:
            rounds += f" (of {data['rows_in_file']:,} rows in the file)"
        rows = [
            ("source", f"your logs ({data['format']})"),
            ("path", data["path"]),
            ("slice", data["slice"]),
            ("rounds", rounds),
            ("actions", f"{data['actions']}, {data['positions']} position(s)"),
            ("context", f"{data['context_columns']} numeric column(s)"),
            (
                "mean reward",
                f"{data['mean_reward']:.5f} over all rounds" + ("" if data["binary_reward"] else ", not 0/1"),
            ),
        ]
    rows += _target_lines(target)
    return ["| data | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def obd_table(obd: dict) -> list[str]:
    lo, hi = obd["truth_ci"]
    campaign = obd.get("data", {}).get("campaign", "?")
    rows = [
        *(data_table(obd["data"], obd["target"]) + [""] if "data" in obd and "target" in obd else []),
        f"OBD ({campaign} campaign): truth = BTS click rate in its own logs {_f(obd['truth'])} "
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


def logs_table(logs: dict) -> list[str]:
    """The target's estimated value on your logs, beside the logging policy's own mean reward."""
    base = logs["logging_policy"]
    lo, hi = base["ci"]
    level = logs.get("level", 0.95)
    rows = [
        *data_table(logs["data"], logs["target"]),
        "",
        f"logging policy (the log's own mean reward on the evaluated rows): {_f(base['value'])} "
        f"({level:.0%} CI {_f(lo)}..{_f(hi)}, {base['rows']:,} rows)",
        "",
        f"| estimator | estimate | {level:.0%} CI | CI from | minus logging policy |",
        "|---|---:|---|---|---:|",
    ]
    for name, e in _ordered(logs["estimators"], ESTIMATORS):
        rows.append(
            f"| {name} | {_f(e['estimate'])} | {_f(e['ci'][0])}..{_f(e['ci'][1])} | {e['ci_kind']} | "
            f"{e['vs_logging']:+.5f} |"
        )
    w = logs["weights"]
    rows += [
        "",
        f"importance weights: max {w['max']:.2f}, mean {w['mean']:.3f} (about 1 when the target stays where the "
        f"logging policy went), effective sample size {w['ess']:,.0f} of {w['rows']:,}",
    ]
    if "rewarded_rows" in w:
        rows.append(
            f"rows with a reward: {w['rewarded_rows']:,}, of which {w['rewarded_upweighted']:,} where the target "
            "puts more mass than the logging policy did (weight > 1); with a handful of these the intervals "
            "understate the uncertainty"
        )
    skipped = logs.get("reward_model", {}).get("skipped")
    if skipped:
        rows.append(f"DM, DR and switch-DR: not computed ({skipped})")
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
    """The bench's final JSON line: the studies that ran."""
    out: dict[str, Any] = {}
    if "obd" in summary:
        obd = summary["obd"]
        out["obd"] = {"truth": obd["truth"]}
        for name, e in _ordered(obd["estimators"], ESTIMATORS):
            out["obd"][name] = {"estimate": e["estimate"], "ci": e["ci"], "rel_error": e["rel_error"]}
    if "logs" in summary:
        logs = summary["logs"]
        out["logs"] = {
            "target": logs["target"].get("label"),
            "rounds": logs["data"]["evaluated_rounds"],
            "logging_policy": logs["logging_policy"]["value"],
        }
        for name, e in _ordered(logs["estimators"], ESTIMATORS):
            out["logs"][name] = {"estimate": e["estimate"], "ci": e["ci"]}
    if "pacing" in summary:
        out["pacing"] = {
            n: {"value_vs_optimum": s["value_vs_optimum"], "overspend": s["overspend"]}
            for n, s in _ordered(summary["pacing"]["summary"], BIDDERS)
        }
    if "bandits" in summary:
        out["bandit_regret"] = {
            n: summary["bandits"][n]["cumulative_regret"]
            for n in ("thompson", "epsilon_greedy", "random")
            if n in summary["bandits"]
        }
    return out


def report_md(summary: dict[str, Any]) -> str:
    lines = ["# Off-policy evaluation, bandits and pacing", ""]
    if "obd" in summary:
        lines += [
            "## Open Bandit Dataset: the BTS policy's value from the random logs",
            "",
            "![OBD estimates](ope_obd.png)",
            "",
            *obd_table(summary["obd"]),
            "",
        ]
        if summary.get("replay"):
            lines += ["Replay evaluation of learning policies on the same random logs:", ""]
            lines += [*replay_table(summary["replay"]), ""]
    if "logs" in summary:
        target = summary["logs"]["target"].get("label", "the target policy")
        lines += [
            f"## Your logs: the value of {target}",
            "",
            "![estimates on your logs](ope_logs.png)",
            "",
            *logs_table(summary["logs"]),
            "",
        ]
    sections = (
        ("synthetic", "## Known truth: synthetic bandit", "![synthetic](ope_synthetic.png)", synthetic_table),
        ("bandits", "## Thompson sampling: online regret", "![regret](bandit_regret.png)", bandit_table),
        ("pacing", "## Budget pacing", "![spend](pacing_spend.png)", pacing_table),
    )
    for key, title, image, table in sections:
        if key in summary:
            lines += [title, "", image, "", *table(summary[key]), ""]
    return "\n".join(lines)
