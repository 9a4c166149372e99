"""Human-readable reports of a run: a console summary, Markdown and PNG plots.

Plots use matplotlib's Agg backend (no display needed) and are written next to the Markdown
that embeds them, so a report folder opens in any Markdown viewer.
"""

from __future__ import annotations

from typing import Any

from reco.plots import figure_png, plt


def training_curve_png(history: list[dict[str, Any]], metric: str = "val_hit@10") -> bytes:
    """Loss and validation metric per epoch, as PNG bytes."""
    epochs = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax1.plot(epochs, [h["loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [h[metric] for h in history], "s-", color="tab:orange", label=metric)
    ax2.set_ylabel(metric, color="tab:orange")
    ax1.set_title("StarSpace training")
    return figure_png(fig)


def curve_table(history: list[dict[str, Any]], metric: str = "val_hit@10") -> list[str]:
    rows = [f"| epoch | train loss | {metric} | mean rank | examples/s |", "|---:|---:|---:|---:|---:|"]
    for h in history:
        rows.append(
            f"| {h['epoch']} | {h['loss']:.4f} | {h[metric]:.4f} | {h['val_mean_rank']:.1f} | "
            f"{h['examples_per_second']:,.0f} |"
        )
    return rows


def hit_table(evaluation: dict[str, Any]) -> list[str]:
    rows = [
        "| users | targets | scorer | hit@1 | hit@10 | hit@20 | hit@50 | mean rank |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for role, by_scorer in evaluation.items():
        for scorer, m in by_scorer.items():
            rows.append(
                f"| {role} | {m['targets']:,} | {scorer} | {m['hit@1']:.4f} | {m['hit@10']:.4f} | {m['hit@20']:.4f} "
                f"| {m['hit@50']:.4f} | {m['mean_rank']:.1f} |"
            )
    return rows


def embedding_report_md(summary: dict[str, Any]) -> str:
    ing, tr, idx = summary["ingest"], summary["training"], summary["index"]
    lines = [
        f"# Run report: {summary['run_dir']}",
        "",
        f"Data: {ing['source']}: {ing['interactions']:,} interactions, {ing['users']:,} users, {ing['topics']:,} "
        "topics "
        f"(splits: {', '.join(f'{k} {v:,}' for k, v in sorted(ing['splits'].items()))}).",
        "",
        "## Embeddings (StarSpace on Ray Train)",
        "",
        f"{tr['workers']} workers, {tr['epochs_run']} epochs "
        f"({'early stopped' if tr['early_stopped'] else 'all epochs'}), "
        f"best epoch {tr['best_epoch']}, {tr['examples_per_second']:,.0f} training examples/s.",
        "",
        "![training curve](training_curve.png)",
        "",
        *curve_table(tr["history"]),
        "",
        "## Held-out topics: the model against popularity",
        "",
        "Each held-out topic is ranked among all topics not in the user's input.",
        "",
        *hit_table(summary["evaluation"]),
        "",
        "## Index",
        "",
        f"{idx['kind']} over {idx['users']:,} users; recall@10 against exact search {idx['recall@10_vs_exact']:.4f}.",
        "",
    ]
    return "\n".join(lines)


def console_lines(summary: dict[str, Any]) -> list[str]:
    """The embedding half of the pipeline's closing summary: data, training curve, held-out hit@10, index."""
    ing, tr, idx, ev = summary["ingest"], summary["training"], summary["index"], summary["evaluation"]
    out = [
        "",
        f"Run: {summary['run_dir']}   ({summary.get('total_seconds', 0):.0f}s)",
        f"  data      {ing['source']}",
        f"            {ing['interactions']:,} interactions, {ing['users']:,} users, {ing['topics']:,} topics",
        f"  training  {tr['epochs_run']} epochs on {tr['workers']} Ray Train workers, best epoch {tr['best_epoch']}"
        f"{' (early stop)' if tr['early_stopped'] else ''}, {tr['examples_per_second']:,.0f} examples/s",
        "            epoch   loss     val hit@10 (a sample of validation users, to pick the epoch)",
    ]
    out += [f"            {h['epoch']:>5}   {h['loss']:.4f}   {h['val_hit@10']:.4f}" for h in tr["history"]]
    for role, by in ev.items():
        m, p = by["starspace"], by["popularity"]
        out.append(
            f"  hit@10    all {role} users ({m['targets']:,} held-out topics): StarSpace {m['hit@10']:.4f}  vs "
            f"popularity {p['hit@10']:.4f}"
        )
    out.append(f"  index     {idx['kind']}, recall@10 vs exact {idx['recall@10_vs_exact']:.4f}")
    return out
