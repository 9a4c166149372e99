"""A trained ranker's test figures in a few lines, for the pipeline's closing summary."""

from __future__ import annotations

from typing import Any


def console_lines(summary: dict[str, Any]) -> list[str]:
    """The ranker, its data and its test figures: AUC and calibration per task, HR@10 on leave-one-out."""
    out = [
        f"  ranking   {summary['model']} on {summary['data']} ({summary['rows']['test']:,} test rows), "
        f"best epoch {summary['best_epoch']} of {summary['epochs_run']}"
    ]
    for task, m in summary["test"].get("ctr", {}).items():
        out.append(
            f"            {task}: AUC {m['auc']:.4f}, log loss {m['logloss']:.4f}, "
            f"ECE {m['ece_before']:.4f} -> {m['ece_after']:.4f} after {m['method']} calibration"
        )
    for protocol, figures in ((p, summary["test"][p]) for p in ("sampled", "full") if p in summary["test"]):
        out.append(
            f"            leave-one-out ({protocol}): "
            + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if "@" in k)
        )
    return out
