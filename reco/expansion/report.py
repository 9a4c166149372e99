"""The expansion evaluation as text and plots: one table per size bucket, the headline by method.

The same table goes to the console (benches) and into the run's Markdown report. The report
leads with its headline figure (:func:`headline_metric`): where the lists' true communities
are known (synthetic data), the share of the audience that belongs to the list's community,
beside random and most-active users; on real data, recall of the held-out seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reco.expansion.protocol import K_NAMES
from reco.plots import figure_png, plt

_K_LABEL = {"holdout": "|H|", "5x_holdout": "5|H|", "audience": "aud"}
TRUTH = "truth_precision@holdout"
RECALL = "recall@holdout"
PLOTS = {TRUTH: "expansion_truth.png", RECALL: "expansion_recall.png"}
BASELINES = ("random", "most_active")

# What each figure means, one line each, for the report's readers.
MEANINGS = {
    "truthP": "share of the audience's top K users who truly belong to the list's community (known on synthetic data, "
    "where the communities are planted); random users score about the community's share of all users",
    "R": "recall: share of the held-out seeds found in the top K",
    "R_synthetic": "recall: share of the held-out seeds found in the top K. On synthetic small and medium lists it is "
    "near zero for every method by construction: a held-out seed is one of thousands of equally plausible community "
    "members",
    "P": "precision: share of the top K that are held-out seeds",
    "AUC": "chance that a held-out seed scores above a random non-member (0.5: no better than chance)",
    "±se": "standard error of R@|H| over the bucket's lists",
}


def has_truth(summary: dict[str, Any]) -> bool:
    return any(TRUTH in v for b in summary.values() for v in b["methods"].values())


def headline_metric(summary: dict[str, Any]) -> str:
    """The figure that shows whether expansion works on this data: community share if known, else recall."""
    return TRUTH if has_truth(summary) else RECALL


def columns(summary: dict[str, Any]) -> list[str]:
    """Metrics in display order: recall, precision, AUC, truth precision if any."""
    have = {m for b in summary.values() for v in b["methods"].values() for m in v}
    cols = (
        ["recall@holdout", "recall@holdout_se"]
        + [f"recall@{k}" for k in K_NAMES[1:]]
        + [f"precision@{k}" for k in K_NAMES]
        + ["auc"]
    )
    cols += [f"truth_precision@{k}" for k in K_NAMES if f"truth_precision@{k}" in have]
    return [c for c in cols if c in have]


def _label(col: str) -> str:
    if col.endswith("_se"):
        return "±se"
    name, _, k = col.partition("@")
    short = {"recall": "R", "precision": "P", "truth_precision": "truthP"}.get(name, name.upper())
    return f"{short}@{_K_LABEL[k]}" if k else short


def _width(col: str) -> int:
    return max(9, len(_label(col)) + 2)


def table_lines(summary: dict[str, Any], markdown: bool = True) -> list[str]:
    """Per bucket: lists, mean size, and each method's mean figures (best per column in bold)."""
    cols = columns(summary)
    out: list[str] = []
    for bucket, part in summary.items():
        out.append(f"{bucket}: {part['lists']} lists, mean size {part['mean_size']:.0f}")
        methods = part["methods"]
        best = {c: max(v.get(c, float("-inf")) for v in methods.values()) for c in cols}
        if markdown:
            header = " | ".join(_label(c).replace("|", "\\|") for c in cols)  # |H| inside a Markdown cell
            out += ["", f"| method | {header} |", "|---|" + "---:|" * len(cols)]
        else:
            out.append(f"  {'method':<12}" + "".join(f"{_label(c):>{_width(c)}}" for c in cols))
        for m, v in methods.items():
            cells = [f"{v[c]:.4f}" for c in cols]
            if markdown:
                cells = [
                    f"**{s}**" if abs(v[c] - best[c]) < 5e-5 and not c.endswith("_se") else s
                    for s, c in zip(cells, cols)
                ]
                out.append(f"| {m} | " + " | ".join(cells) + " |")
            else:
                out.append(f"  {m:<12}" + "".join(f"{s:>{_width(c)}}" for s, c in zip(cells, cols)))
        out.append("")
    return out


def metric_png(summary: dict[str, Any], metric: str = RECALL, title: str = "") -> bytes:
    """Grouped bars: ``metric`` by bucket (groups) and method (bars)."""
    buckets = list(summary)
    methods = list(next(iter(summary.values()))["methods"]) if summary else []
    fig, ax = plt.subplots(figsize=(8, 3.8), dpi=110)
    width = 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        vals = [summary[b]["methods"].get(m, {}).get(metric, np.nan) for b in buckets]
        ax.bar(np.arange(len(buckets)) + i * width - 0.4 + width / 2, vals, width, label=m)
    ax.set_xticks(np.arange(len(buckets)), [f"{b} ({summary[b]['lists']} lists)" for b in buckets])
    ax.set_ylabel(metric)
    ax.set_title(title or _TITLES.get(metric, f"audience expansion: {metric} by seed-list size"))
    ax.legend(fontsize=7, ncol=4)
    return figure_png(fig)


_TITLES = {TRUTH: "share of the audience in the list's community (top |H|)", RECALL: "recall of held-out seeds at |H|"}


def plots(summary: dict[str, Any]) -> dict[str, bytes]:
    """{report file name: PNG} for the figures this summary has, the headline first."""
    metrics = [TRUTH, RECALL] if has_truth(summary) else [RECALL]
    return {PLOTS[m]: metric_png(summary, m) for m in metrics}


def headline_lines(summary: dict[str, Any], system_method: str = "blend") -> list[str]:
    """One line per bucket: the system's headline figure (the blend, or the ensemble across representations; and
    the best method's, if another) beside the baselines."""
    metric = headline_metric(summary)
    out = []
    for bucket, part in summary.items():
        methods = {m: v[metric] for m, v in part["methods"].items() if metric in v}
        scored = {m: v for m, v in methods.items() if m not in BASELINES}
        if not scored:
            continue
        system = system_method if system_method in scored else max(scored, key=scored.get)
        best = max(scored, key=scored.get)
        line = f"{bucket} lists: {system} {scored[system]:.3f}"
        if scored[best] > scored[system]:
            line += f" (best: {best} {scored[best]:.3f})"
        base = ", ".join(f"{b.replace('_', ' ')} {methods[b]:.3f}" for b in BASELINES if b in methods)
        out.append(line + (f", vs {base}" if base else ""))
    return out


def meaning_lines(summary: dict[str, Any]) -> list[str]:
    truth = has_truth(summary)
    keys = ["truthP", "R_synthetic"] if truth else ["R"]
    return [f"- **{k.split('_')[0]}**: {MEANINGS[k]}." for k in [*keys, "P", "AUC", "±se"]]


def comparison_lines(versus: dict[str, Any]) -> list[str]:
    """One line per bucket: the blend (or ensemble) against the best other method, paired over lists."""
    return [
        f"{b:<7} {v.get('method', 'blend')} - {v['best_other']}: {v['diff']:+.4f} ± {v['paired_se']:.4f} (paired se, "
        f"z {v['z']:+.2f}): {v['verdict']}"
        for b, v in versus.items()
    ]


def choice_md(choice: dict[str, Any] | None, used: dict[str, Any] | None) -> list[str]:
    """The ensemble's section: what the validation stage chose and why, or the weights a test run used."""
    if choice:
        lines = [
            "## The ensemble, chosen on the validation stage",
            "",
            "Per size bucket, of the fusions within one paired standard error of the best validation recall at |H|, "
            "the one spanning the most representations with the most even weights (reco.expansion.ensemble.choose; "
            "test seeds are never read), beside the best option and every component alone:",
            "",
            "| bucket | chosen weights | offset | its validation R@\\|H\\| | best option's | best single component "
            "| its R@\\|H\\| | list splits |",
            "|---|---|---:|---:|---:|---|---:|---:|",
        ]
        for b, c in choice.items():
            w = ", ".join(f"{k} {v:g}" for k, v in c["weights"].items())
            lines.append(
                f"| {b} | {w} | {c['offset']:g} | {c['validation_recall']:.4f} | "
                f"{c.get('best_option_recall', float('nan')):.4f} | {c['best_single']} | "
                f"{c['best_single_recall']:.4f} | {c['samples']} |"
            )
        lines += ["", "Every component alone (validation recall at |H|):", ""]
        for b, c in choice.items():
            lines.append(f"- {b}: " + ", ".join(f"{k} {v:.4f}" for k, v in c["singles"].items()))
        return [*lines, ""]
    if used:
        lines = [
            "## The ensemble",
            "",
            "Weights chosen on the validation stage (`bench.expansion --stage validation`; the data set's config "
            "records them and the validation figures), applied unchanged here:",
            "",
        ]
        for b, w in used["weights"].items():
            if w:
                off = used["offsets"].get(b, used["offset"])
                lines.append(f"- {b}: " + ", ".join(f"{k} {v:g}" for k, v in w.items()) + f" (offset {off:g} seeds)")
        return [*lines, ""]
    return []


def report_md(
    summary: dict[str, Any],
    meta: dict[str, Any],
    versus: dict[str, Any] | None = None,
    choice: dict[str, Any] | None = None,
    used: dict[str, Any] | None = None,
) -> str:
    """The run's expansion report: the headline figure first, then every figure by bucket and method."""
    metric = headline_metric(summary)
    lead = (
        "Does the audience belong to the list's community? Share of the top |H| users who are true members, seeds "
        "excluded:"
        if metric == TRUTH
        else "Recall of the held-out seeds at K = |H|:"
    )
    lines = [
        "# Audience expansion",
        "",
        f"{meta.get('lists', '?')} seed lists from {meta.get('source', '?')}; {meta.get('splits', '?')} random splits; "
        f"{meta.get('holdout_share', 0):.0%} of each list held out plus as many random non-members "
        f"(stage: {meta.get('stage', 'test')}). K = |H| (the held-out size), 5|H| and aud = "
        f"{meta.get('audience_share', 0.1):.0%} of all users.",
        "",
        lead,
        "",
        *(f"- {x}" for x in headline_lines(summary, meta.get("headline", "blend"))),
        "",
        f"![{_TITLES[metric]}]({PLOTS[metric]})",
        "",
        *choice_md(choice, used),
        "What each figure means:",
        "",
        *meaning_lines(summary),
        "",
        "## Every figure by bucket and method",
        "",
        *table_lines(summary, markdown=True),
    ]
    if metric == TRUTH:
        lines += [f"![{_TITLES[RECALL]}]({PLOTS[RECALL]})", ""]
    if versus:
        lines += [
            f"{meta.get('headline', 'blend').capitalize()} against the best other method of each bucket, recall at "
            "|H|, paired over the bucket's lists "
            "(better / worse: two paired standard errors or more):",
            "",
            *(f"- {x}" for x in comparison_lines(versus)),
        ]
    return "\n".join(lines)


def section_lines(result: dict[str, Any]) -> list[str]:
    """The expansion section of the run's embeddings report: the headline and its plot; the rest in expansion.md."""
    meta, summary = result["meta"], result["buckets"]
    metric = headline_metric(summary)
    return [
        "## Audience expansion",
        "",
        f"{meta['lists']} seed lists from {meta['source']}, {meta['splits']} splits (stage {meta['stage']}); "
        "every figure in [expansion.md](expansion.md).",
        "",
        *(f"- {x}" for x in headline_lines(summary, meta.get("headline", "blend"))),
        "",
        f"![{_TITLES[metric]}]({PLOTS[metric]})",
        "",
    ]


def console_lines(result: dict[str, Any]) -> list[str]:
    """The pipeline's closing summary: what the headline figure is, and its value per bucket."""
    metric = headline_metric(result["buckets"])
    label = "in the list's community (top |H|)" if metric == TRUTH else "held-out seeds found (recall at |H|)"
    return [f"  expansion {result['meta']['lists']} seed lists, share {label}:"] + [
        f"            {x}" for x in headline_lines(result["buckets"], result["meta"].get("headline", "blend"))
    ]
