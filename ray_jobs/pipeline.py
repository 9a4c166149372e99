"""pipeline: every step of the embedding half in one Ray session, then a short report.

ingest -> train_embeddings -> export_embeddings -> build_index -> evaluate, each the same
``run(cfg, run_dir)`` its own module runs alone; the run directory carries artifacts from one
step to the next. Prints row counts, the training curve, hit@10 against popularity and where
the artifacts are; ``metrics/pipeline.json`` holds the same and each step's wall time.
"""

from __future__ import annotations

import logging
import time

from ray_jobs import build_index, evaluate, export_embeddings, ingest, train_embeddings
from ray_jobs import expand
from ray_jobs import train_ranker
from ray_jobs.common import StepTimer, job_main
from reco.config import Config
from reco.embedding.report import console_report
from reco.run_dir import RunDir
from reco import artifacts

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
        "step_seconds": seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    run.write_json(artifacts.metrics("pipeline"), summary, step="pipeline")
    return summary


main = job_main(run, __doc__.splitlines()[0], render=console_report)

if __name__ == "__main__":
    raise SystemExit(main())
