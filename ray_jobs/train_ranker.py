"""train_ranker: a CTR / ranking model (reco.rank) on Ray Train, calibrated, evaluated, saved.

The driver loads the configured data view (``ranking.source``), fits the feature pipeline on
the training rows only and encodes them with Ray Data. Each Ray Train worker streams its shard
of the training set (``get_dataset_shard``), samples negatives when the data are implicit,
takes the shared training steps (reco.rank.training) under DDP, scores its share of the
validation users, and all workers agree on the epoch's loss and validation metric (all-reduce
/ all-gather), so they stop early together. Every epoch reports and checkpoints on every rank;
a rerun with the same settings on the same data resumes from the latest checkpoint.

The driver then fits the calibrator on validation predictions of the best epoch, evaluates on
the test rows and writes, into the run directory:

  models/ranker.pt                  model + config + fitted features + catalogue + calibrators
  metrics/ranking.json              curve, test metrics, calibration, throughput
  predictions/ranking_test.parquet  test logits, calibrated probabilities, labels, groups
  reports/ranking_reliability.png   reliability diagram of the test rows before / after
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ray_jobs.common import StepTimer, job_main
from ray_jobs.train_worker import allreduce, best_of, load_checkpoint, quiet_worker_logs, save_checkpoint
from reco import artifacts
from reco.config import Config
from reco.errors import ConfigError
from reco.fit_state import FitState
from reco.rank.artifact import Ranker
from reco.rank.calibration import Calibrator, choose_and_fit, reliability_png
from reco.rank.catalog import Catalog, SideTable
from reco.rank.config import RankingConfig
from reco.rank.datasets import RankingData, load_ranking_data
from reco.rank.evaluation import ctr_report, leave_one_out_report, model_score_matrix
from reco.rank.features import FeatureLayout, FeaturePipeline, Rows
from reco.rank.losses import make_loss
from reco.rank.models import build_model
from reco.rank.training import (
    MONITOR_KEY,
    NegativeSampler,
    make_optimizer,
    predict_logits,
    seen_pairs,
    train_epoch,
    validation_metrics,
)
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_ranker")
STEP = "train_ranker"
METRICS_ARTIFACT = artifacts.metrics("ranking")
PREDICTIONS_ARTIFACT = artifacts.RANKING_PREDICTIONS
RELIABILITY_ARTIFACT = artifacts.report("ranking_reliability.png")


def _encode(frame: pd.DataFrame, pipeline: FeaturePipeline, labels: list[str]) -> pa.Table:
    return pipeline.rows(frame, labels).to_table()


def _gather(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Every rank's arrays, concatenated in rank order, on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return parts
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, parts)
    return [np.concatenate([p[i] for p in everyone]) for i in range(len(parts))]


def _validate(model: torch.nn.Module, val_it, rank: int, world: int, monitor: str, tasks: list[str]) -> dict:
    """This rank scores the validation groups hashed to it; all ranks get the same metrics."""
    logits, labels, groups = [], [], []
    for batch in val_it.iter_batches(batch_size=8192, batch_format="pyarrow"):
        rows = Rows.from_columns(batch)
        rows = rows.take(rows.groups.view(np.uint64) % np.uint64(world) == rank)
        logits.append(predict_logits(model, rows.cat, rows.dense))
        labels.append(rows.labels)
        groups.append(rows.groups)
    n_tasks = len(tasks)
    mine = [
        np.concatenate(x) if x else np.zeros((0, n_tasks) if i < 2 else 0)
        for i, x in enumerate((logits, labels, groups))
    ]
    z, y, g = _gather(mine)
    return validation_metrics(z, y, g, monitor, tasks)


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker."""
    rc = RankingConfig(**loop_cfg["ranking"])
    tc = rc.train
    quiet_worker_logs()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(tc.cpus_per_worker)))
    torch.manual_seed(tc.seed)
    layout = FeatureLayout.from_dict(loop_cfg["layout"])
    tasks = loop_cfg["tasks"]
    model = build_model(rc.model, layout, len(tasks))
    if loop_cfg.get("pretrained"):
        gmf, mlp = (torch.load(io.BytesIO(b), weights_only=True) for b in loop_cfg["pretrained"])
        model.load_pretrained(gmf, mlp, rc.model.neumf_alpha)
    opt = make_optimizer(model.parameters(), tc)
    state, best = load_checkpoint(model, opt)
    if best is not None and rank == 0:
        log.info("resuming from the checkpoint after epoch %d", state.epoch)
    ddp = ray.train.torch.prepare_model(model)
    best = best or {k: v.detach().clone() for k, v in model.state_dict().items()}
    sampler = None
    if tc.negatives:
        sampler = NegativeSampler(
            layout, SideTable.from_dict(loop_cfg["items"]), np.asarray(loop_cfg["seen"], np.int64), tc.negatives
        )
    loss_fn = make_loss(tc)
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    batch = max(1, tc.batch_size // world)  # global batch = ranking.train.batch_size
    while state.epoch < tc.epochs and not state.stopped:
        epoch = state.epoch + 1
        rng = np.random.default_rng([tc.seed, epoch, rank])
        batches = (
            Rows.from_columns(b)
            for b in train_it.iter_batches(
                batch_size=batch,
                batch_format="pyarrow",
                local_shuffle_buffer_size=batch * 16,
                local_shuffle_seed=tc.seed * 7919 + epoch * 31 + rank,
            )
        )
        stats = train_epoch(ddp, opt, loss_fn, batches, sampler, rng)
        val = _validate(model, val_it, rank, world, tc.monitor, tasks)
        loss_sum, examples, secs = allreduce([stats["loss"] * stats["examples"], stats["examples"], stats["seconds"]])
        metrics = {
            "epoch": epoch,
            "loss": loss_sum / max(examples, 1),
            "train_examples": int(examples),
            "train_seconds": secs / world,
            "examples_per_second": examples / max(secs / world, 1e-9),
            **val,
        }
        if state.update(metrics, MONITOR_KEY, tc.patience):
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if rank == 0:
            log.info(
                "epoch %d/%d: loss %.4f  val auc %.4f  monitor (%s) %.4f  %.0f examples/s%s",
                epoch,
                tc.epochs,
                metrics["loss"],
                val["val_auc"],
                tc.monitor,
                val[MONITOR_KEY],
                metrics["examples_per_second"],
                "  (early stop)" if state.stopped else "",
            )
        with tempfile.TemporaryDirectory() as d:
            ckpt = save_checkpoint(d, model, opt, best, state) if rank == 0 else None
            ray.train.report(metrics, checkpoint=ckpt)


# -- driver ---------------------------------------------------------------------------------------


def fingerprint(rc: RankingConfig, data: RankingData) -> str:
    """Training run name: the same model settings on the same rows resume; anything else starts fresh."""
    relevant = rc.model_dump(
        exclude={"calibration": True, "train": {"epochs", "patience", "num_workers", "cpus_per_worker", "max_failures"}}
    )
    rows = [int(pd.util.hash_pandas_object(f.astype(str), index=False).sum()) for f in (data.train, data.validation)]
    blob = json.dumps({"cfg": relevant, "rows": rows}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _pretrained_states(rc: RankingConfig) -> list[bytes] | None:
    """NeuMF pre-training: the state dicts of the trained GMF and MLP run dirs, as bytes."""
    if not rc.model.pretrained:
        return None
    out = []
    for uri, want in zip(rc.model.pretrained, ("gmf", "mlp")):
        ranker = Ranker.load(uri)
        if ranker.model_cfg.name != want:
            raise ConfigError(f"ranking.model.pretrained: {uri} holds a {ranker.model_cfg.name} model, expected {want}")
        buf = io.BytesIO()
        torch.save(ranker.model.state_dict(), buf)
        out.append(buf.getvalue())
    return out


def _best_model(result, rc: RankingConfig, layout: FeatureLayout, tasks: list[str]) -> tuple[torch.nn.Module, FitState]:
    best, state = best_of(result)
    model = build_model(rc.model, layout, len(tasks))
    model.load_state_dict(best)
    model.eval()
    return model, state


def _predictions_table(logits: np.ndarray, rows: Rows, calibrators: list[Calibrator], tasks: list[str]) -> pa.Table:
    cols: dict[str, np.ndarray] = {"group": rows.groups}
    for t, name in enumerate(tasks):
        cols[f"label_{name}"] = rows.labels[:, t]
        cols[f"logit_{name}"] = logits[:, t].astype(np.float32)
        cols[f"prob_{name}"] = calibrators[t].probabilities(logits[:, t]).astype(np.float32)
    return pa.table(cols)


def run(cfg: Config, run: RunDir) -> dict:
    rc = cfg.ranking
    tc = rc.train
    if not run.exists(artifacts.MANIFEST):
        run.start(cfg.model_dump())
    with StepTimer(f"prepare ranking data ({rc.source})"):
        data = load_ranking_data(rc, run)
        if tc.monitor == "hr@10" and data.protocol != "leave_one_out":
            raise ConfigError(
                "ranking.train.monitor=hr@10 needs leave-one-out validation lists (ranking.source=movielens_ncf), "
                f"not {rc.source}"
            )
        if tc.negatives and (data.items is None or data.spec.item_key is None):
            raise ConfigError(f"ranking.train.negatives needs an item catalogue, which {data.name} lacks")
        pipeline = FeaturePipeline.fit(data.train, data.spec, rc.features)
        layout = pipeline.layout()
        build_model(rc.model, layout, len(data.labels))  # fail here, in the driver, on a model that cannot fit the data
        catalog = Catalog.build(pipeline, data.users, data.items)
        frame = data.train.sample(frac=1.0, random_state=rc.split_seed).reset_index(drop=True)
        train_ds = (
            ray.data.from_pandas(frame)
            .map_batches(_encode, batch_format="pandas", fn_kwargs={"pipeline": pipeline, "labels": data.labels})
            .materialize()
        )
        train_rows = pipeline.rows(data.train, data.labels) if tc.negatives else None
        val_rows, test_rows = pipeline.rows(data.validation, data.labels), pipeline.rows(data.test, data.labels)
        val_ds = ray.data.from_arrow(val_rows.to_table())
    loop_cfg = {
        "ranking": rc.model_dump(),
        "layout": layout.to_dict(),
        "tasks": data.labels,
        "pretrained": _pretrained_states(rc),
    }
    if tc.negatives:
        loop_cfg.update(items=catalog.items.to_dict(), seen=seen_pairs(layout, train_rows).tolist())
    name = f"ranker-{rc.model.name.replace('+', 'plus')}-{fingerprint(rc, data)}"
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_cfg,
        datasets={"train": train_ds, "validation": val_ds},
        dataset_config=DataConfig(datasets_to_split=["train"]),
        scaling_config=ScalingConfig(
            num_workers=tc.num_workers, use_gpu=False, resources_per_worker={"CPU": tc.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=name,
            storage_path=run.local_path(artifacts.TRAIN_STORAGE)
            if run.is_local()
            else run.path(artifacts.TRAIN_STORAGE),
            storage_filesystem=None if run.is_local() else run.fs,
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=tc.max_failures),
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
    )
    with StepTimer(
        f"Ray Train: {rc.model.name}, {tc.num_workers} workers, {len(data.train)} rows, up to {tc.epochs} epochs"
    ) as timer:
        result = trainer.fit()
    model, state = _best_model(result, rc, layout, data.labels)

    with StepTimer("calibrate and evaluate"):
        val_logits = predict_logits(model, val_rows.cat, val_rows.dense)
        fitted = [
            choose_and_fit(
                rc.calibration.method, val_logits[:, t], val_rows.labels[:, t], rc.calibration.bins, rc.split_seed
            )
            for t in range(len(data.labels))
        ]
        calibrators = [c for c, _ in fitted]
        test_logits = predict_logits(model, test_rows.cat, test_rows.dense)
        test = {
            "ctr": ctr_report(
                test_logits, test_rows.labels, test_rows.groups, data.labels, calibrators, rc.calibration.bins
            )
        }
        if data.protocol == "leave_one_out":
            test.update(leave_one_out_report(data, catalog, model_score_matrix(model, catalog)))
    ranker = Ranker(
        model,
        rc.model,
        pipeline,
        catalog,
        data.labels,
        calibrators,
        {"data": data.name, "best_epoch": state.best_epoch, "train_run": name, "monitor": tc.monitor},
    )
    run.write_bytes(
        artifacts.RANKER, ranker.to_bytes(), step=STEP, meta={"model": rc.model.name, "best_epoch": state.best_epoch}
    )
    run.write_table(
        PREDICTIONS_ARTIFACT, _predictions_table(test_logits, test_rows, calibrators, data.labels), step=STEP
    )
    t0 = data.labels[0]
    run.write_bytes(
        RELIABILITY_ARTIFACT,
        reliability_png(
            {
                "uncalibrated": (1 / (1 + np.exp(-test_logits[:, 0].astype(np.float64))), test_rows.labels[:, 0]),
                f"{calibrators[0].method}": (calibrators[0].probabilities(test_logits[:, 0]), test_rows.labels[:, 0]),
            },
            rc.calibration.bins,
            f"{rc.model.name}: test '{t0}'",
        ),
        step=STEP,
    )
    total_examples = sum(h["train_examples"] for h in state.history)
    total_seconds = sum(h["train_seconds"] for h in state.history)
    summary = {
        "step": STEP,
        "data": data.name,
        "model": rc.model.name,
        "tasks": data.labels,
        "train_run": name,
        "rows": {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "workers": tc.num_workers,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "early_stopped": state.stopped,
        "resumed_after_epochs": state.resumed_after,
        "monitor": tc.monitor,
        "best_validation": state.best_metric,
        "fit_seconds": timer.seconds,
        "train_seconds": total_seconds,
        "examples_per_second": total_examples / max(total_seconds, 1e-9),
        "calibration": {
            name_: {"method": c.method, "heldout_ece_by_method": s} for name_, (c, s) in zip(data.labels, fitted)
        },
        "test": test,
        "history": state.history,
    }
    run.write_json(METRICS_ARTIFACT, summary, step=STEP)
    return {k: v for k, v in summary.items() if k != "history"}


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
