"""pipeline: every step in one Ray session, then a short report.

ingest -> train_embeddings -> export_embeddings -> build_index -> expand -> evaluate ->
train_ranker, each the same ``run(cfg, run_dir)`` its own module runs alone (expand fits the
ALS user vectors first when a representation reads them: ray_jobs/representations.py); the run directory
carries artifacts from one step to the next. Prints, last, a summary: the data, the training
curve, held-out hit@10 against popularity, the index, the expansion's headline figure beside
random and most-active users, the ranker's test figures, and where the reports are;
``metrics/pipeline.json`` holds the same and each step's wall time.
"""

from __future__ import annotations

import logging
import time

from ray_jobs import build_index, evaluate, expand, export_embeddings, ingest, train_embeddings, train_ranker
from ray_jobs.common import StepTimer, job_main
from reco import artifacts
from reco.config import Config
from reco.embedding import report as embedding_report
from reco.expansion import report as expansion_report
from reco.rank import report as ranking_report
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.pipeline")

STEPS = (
    ("ingest", ingest.run),
    ("train_embeddings", train_embeddings.run),
    ("export_embeddings", export_embeddings.run),
    ("build_index", build_index.run),
    ("expand", expand.run),
    ("evaluate", evaluate.run),
    ("train_ranker", train_ranker.run),
)


def run(cfg: Config, run: RunDir) -> dict:
    t0 = time.perf_counter()
    seconds = {}
    for i, (name, step) in enumerate(STEPS, 1):
        with StepTimer(f"[{i}/{len(STEPS)}] {name}") as timer:
            step(cfg, run)
        seconds[name] = round(timer.seconds, 1)
    summary = {
        "run_dir": run.uri,
        "ingest": run.read_json(artifacts.metrics("ingest")),
        "training": run.read_json(artifacts.metrics("training")),
        "index": run.read_json(artifacts.metrics("index")),
        "evaluation": run.read_json(artifacts.metrics("evaluation")),
        "expansion": run.read_json(artifacts.metrics("expansion")) if run.has(artifacts.metrics("expansion")) else None,
        "ranking": run.read_json(artifacts.metrics("ranking")),
        "reports": sorted(name.removeprefix("reports/") for name in run.names() if name.startswith("reports/")),
        "step_seconds": seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    run.write_json(artifacts.metrics("pipeline"), summary, step="pipeline")
    return summary


def render(summary: dict) -> str:
    """The closing summary: each domain's lines, then where the reports are."""
    lines = embedding_report.console_lines(summary)
    if summary.get("expansion"):
        lines += expansion_report.console_lines(summary["expansion"])
    lines += ranking_report.console_lines(summary["ranking"])
    lines.append(
        f"  reports   {summary['run_dir']}/reports/: embeddings.md, expansion.md and plots "
        "(manifest.json lists every artifact)"
    )
    return "\n".join(lines)


main = job_main(run, __doc__.splitlines()[0], render=render)

if __name__ == "__main__":
    raise SystemExit(main())
