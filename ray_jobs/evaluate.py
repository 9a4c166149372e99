"""evaluate: held-out topic prediction for the run's model against popularity, and the report.

Scores every user with held-out targets (validation targets of train users, targets of test
users) with Ray Data on an actor pool (reco.embedding.holdout.HoldoutScorer), aggregates hit@k and
mean rank per user role, and writes ``metrics/evaluation.json`` plus a Markdown report with a
training-curve plot under ``reports/``.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import ray

from ray_jobs.common import StepTimer, job_main, read_artifact
from ray_jobs.representations import ensure_representations
from reco import artifacts
from reco.config import Config
from reco.data.histories import select_role
from reco.embedding.holdout import HoldoutScorer, summarize
from reco.embedding.report import embedding_report_md, training_curve_png
from reco.expansion import report as expansion_report
from reco.expansion.ensemble import NAME as ENSEMBLE
from reco.expansion.ensemble import choose
from reco.expansion.evaluation import ProtocolWorker, has_seed_lists, split_samples
from reco.expansion.protocol import against_best_other, recall_at_holdout
from reco.expansion.protocol import summarize as summarize_expansion
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.evaluate")
STEP = "evaluate"


def _with_targets(batch, role):
    return select_role(batch, role, min_input=1, need_targets=True)


def holdout_evaluation(cfg: Config, run: RunDir) -> dict:
    hist = read_artifact(run, "histories").select_columns(["user_id", "role", "topics", "weights", "targets"])
    out = {}
    for role, label in (("train", "validation"), ("test", "test")):
        ranks = (
            hist.map_batches(_with_targets, batch_format="pyarrow", fn_kwargs={"role": role})
            .map_batches(
                HoldoutScorer,
                fn_constructor_kwargs={"run_uri": run.uri},
                batch_size=2048,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=cfg.export.actors),
                num_cpus=cfg.export.cpus_per_actor,
            )
            .to_pandas()
        )
        if len(ranks):
            out[label] = {
                "starspace": summarize(ranks["model_rank"].to_numpy()),
                "popularity": summarize(ranks["popularity_rank"].to_numpy()),
            }
    return out


def expansion_evaluation(cfg: Config, run: RunDir, chosen: dict | None = None) -> dict | None:
    """The audience-expansion protocol over the run's seed lists, (list, split) pairs spread
    over a Ray Data actor pool (reco.expansion.evaluation.ProtocolWorker); None without lists.

    On the validation stage with several components, the ensemble is chosen from the rank samples
    and recorded (``metrics/expansion_choice.json`` and the report); ``chosen``: a test stage's
    weights came from that choice, which its report then shows with the validation figures."""
    if not has_seed_lists(run):
        return None
    ensure_representations(cfg, run)
    p = cfg.expansion.protocol
    list_ids = list(dict.fromkeys(run.read_table(artifacts.SEED_LISTS, columns=["seed_list_id"]).column(0).to_pylist()))
    pairs = [{"list": name, "split": split} for name in list_ids for split in range(p.splits)]
    rows = (
        ray.data.from_items(pairs)
        .map_batches(
            ProtocolWorker,
            fn_constructor_kwargs={"run_uri": run.uri, "expansion": cfg.expansion.model_dump()},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=p.actors),
            num_cpus=p.cpus_per_actor,
        )
        .to_pandas()
    )
    rows, samples = split_samples(rows)
    summary = summarize_expansion(rows)
    choice = choose(samples, cfg.expansion.ensemble) if samples else None
    meta = {
        "lists": len(list_ids),
        "splits": p.splits,
        "holdout_share": p.holdout_share,
        "audience_share": p.audience_share,
        "stage": p.stage,
        "source": run.artifact(artifacts.SEED_LISTS)["meta"].get("source", "the run's seed lists"),
    }
    present = set(rows["method"])
    headline = next(
        (m for m in (ENSEMBLE, "blend", *sorted(present)) if m in present and m.endswith(("ensemble", "blend"))),
        "blend",
    )
    result = {
        "meta": {**meta, "headline": headline},
        "buckets": summary,
        "recall_at_holdout": recall_at_holdout(summary),
        "blend_vs_best": against_best_other(rows, method=headline),
    }
    if choice:
        result["ensemble_choice"] = {b: c.to_dict() for b, c in choice.items()}
        run.write_json(artifacts.metrics("expansion_choice"), result["ensemble_choice"], step=STEP)
    elif chosen:
        result["ensemble_choice"] = chosen
    elif cfg.expansion.protocol.stage == "test" and headline == ENSEMBLE:
        e = cfg.expansion.ensemble
        result["ensemble_used"] = {"weights": e.weights.model_dump(), "offsets": dict(e.offsets), "offset": e.offset}
    run.write_json(artifacts.metrics("expansion"), result, step=STEP)
    run.write_table(artifacts.EXPANSION_ROWS, pa.Table.from_pandas(rows, preserve_index=False), step=STEP)
    for name, png in expansion_report.plots(summary).items():
        run.write_bytes(artifacts.report(name), png, step=STEP)
    run.write_bytes(
        artifacts.report("expansion.md"),
        expansion_report.report_md(
            summary, result["meta"], result["blend_vs_best"], result.get("ensemble_choice"), result.get("ensemble_used")
        ).encode(),
        step=STEP,
    )
    for line in expansion_report.table_lines(summary, markdown=False):
        log.info("%s", line)
    return result


def run(cfg: Config, run: RunDir) -> dict:
    with StepTimer("held-out topic evaluation (Ray Data)"):
        evaluation = holdout_evaluation(cfg, run)
    with StepTimer("audience expansion protocol (Ray Data)"):
        expansion = expansion_evaluation(cfg, run)
    for role, by in evaluation.items():
        log.info(
            "%s: StarSpace hit@10 %.4f vs popularity %.4f over %d held-out topics",
            role,
            by["starspace"]["hit@10"],
            by["popularity"]["hit@10"],
            by["starspace"]["targets"],
        )
    run.write_json(artifacts.metrics("evaluation"), evaluation, step=STEP)
    summary = {
        "run_dir": run.uri,
        "ingest": run.read_json(artifacts.metrics("ingest")),
        "training": run.read_json(artifacts.metrics("training")),
        "index": run.read_json(artifacts.metrics("index")),
        "evaluation": evaluation,
        "expansion": expansion,
    }
    run.write_bytes(
        artifacts.report("training_curve.png"), training_curve_png(summary["training"]["history"]), step=STEP
    )
    report = embedding_report_md(summary)
    if expansion:
        report += "\n" + "\n".join(expansion_report.section_lines(expansion))
    run.write_bytes(artifacts.report("embeddings.md"), report.encode(), step=STEP)
    return {
        "step": STEP,
        "evaluation": evaluation,
        "report": run.path(artifacts.report("embeddings.md")),
        "expansion_recall_at_holdout": expansion["recall_at_holdout"] if expansion else None,
    }


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
