"""The expansion evaluation as text and a plot: one table per size bucket, recall by method.

The same table goes to the console (benches) and into the run's Markdown report; the plot is
recall at the held-out size per bucket and method (matplotlib Agg, PNG bytes).
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from reco.expansion.protocol import K_NAMES  # noqa: E402

_K_LABEL = {"holdout": "|H|", "5x_holdout": "5|H|", "audience": "aud"}


def columns(summary: dict[str, Any]) -> list[str]:
    """Metrics in display order: recall, precision, AUC, truth precision if any."""
    have = {m for b in summary.values() for v in b["methods"].values() for m in v}
    cols = ["recall@holdout", "recall@holdout_se"] + [f"recall@{k}" for k in K_NAMES[1:]] + [f"precision@{k}" for k in K_NAMES] + ["auc"]
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
            out += ["", "| method | " + " | ".join(_label(c) for c in cols) + " |", "|---|" + "---:|" * len(cols)]
        else:
            out.append(f"  {'method':<12}" + "".join(f"{_label(c):>{_width(c)}}" for c in cols))
        for m, v in methods.items():
            cells = [f"{v[c]:.4f}" for c in cols]
            if markdown:
                cells = [f"**{s}**" if abs(v[c] - best[c]) < 5e-5 and not c.endswith("_se") else s for s, c in zip(cells, cols)]
                out.append(f"| {m} | " + " | ".join(cells) + " |")
            else:
                out.append(f"  {m:<12}" + "".join(f"{s:>{_width(c)}}" for s, c in zip(cells, cols)))
        out.append("")
    return out


def recall_png(summary: dict[str, Any], metric: str = "recall@holdout", title: str = "") -> bytes:
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
    ax.set_title(title or f"audience expansion: {metric} by seed-list size")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def comparison_lines(versus: dict[str, Any]) -> list[str]:
    """One line per bucket: the blend against the best other method, paired over lists."""
    return [f"{b:<7} blend - {v['best_other']}: {v['diff']:+.4f} ± {v['paired_se']:.4f} (paired se, z {v['z']:+.2f}): {v['verdict']}"
            for b, v in versus.items()]


def report_md(summary: dict[str, Any], meta: dict[str, Any], versus: dict[str, Any] | None = None) -> str:
    """The Markdown section of a run's expansion evaluation."""
    lines = [
        "# Audience expansion",
        "",
        f"{meta.get('lists', '?')} seed lists from {meta.get('source', '?')}; {meta.get('splits', '?')} random splits; "
        f"{meta.get('holdout_share', 0):.0%} of each list held out plus as many random non-members "
        f"(stage: {meta.get('stage', 'test')}). K = |H| (the held-out size), 5|H| and aud = "
        f"{meta.get('audience_share', 0.1):.0%} of all users. "
        "R/P: recall and precision of the held-out seeds (±se: standard error of R@|H| over the bucket's lists); "
        "AUC of held-out seeds against the non-members"
        + ("; truthP: share of the audience who are true community members (not seeds)." if any(
            "truth_precision@holdout" in v for b in summary.values() for v in b["methods"].values()) else "."),
        "",
        "![recall by bucket and method](expansion_recall.png)",
        "",
        *table_lines(summary, markdown=True),
    ]
    if versus:
        lines += ["", "Blend against the best other method of each bucket, recall at |H|, paired over the bucket's lists "
                  "(better / worse: two paired standard errors or more):", "", *(f"- {x}" for x in comparison_lines(versus))]
    return "\n".join(lines)


def section_lines(result: dict[str, Any]) -> list[str]:
    """The expansion section of the run's main report (reco.embedding.report): the plot and the table."""
    meta = result["meta"]
    return [
        "## Audience expansion",
        "",
        f"{meta['lists']} seed lists from {meta['source']}, {meta['splits']} splits (stage {meta['stage']}); "
        "details in [expansion.md](expansion.md).",
        "",
        "![recall by bucket and method](expansion_recall.png)",
        "",
        *table_lines(result["buckets"], markdown=True),
    ]
