"""train_embeddings: StarSpace user embeddings on Ray Train (TorchTrainer, DDP on CPU).

Each worker streams its own shard of the train users' histories (``get_dataset_shard``),
takes leave-one-out steps (reco.embedding.fit), scores its shard of the validation users, and
all workers agree on the epoch's loss and hit@10 through an all-reduce. Every epoch reports and
checkpoints (model, optimizer, best model so far, progress); training stops early after
``embedding.patience`` epochs without a better validation hit@10. A rerun with the same config
and data resumes from the latest checkpoint. The best epoch's model is written to
``models/starspace.pt`` and the curve to ``metrics/training.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer

from ray_jobs.common import StepTimer, job_main, read_artifact
from ray_jobs.train_worker import allreduce, best_of, load_checkpoint, quiet_worker_logs, run_config, save_checkpoint
from reco import artifacts
from reco.config import Config
from reco.data.histories import select_role
from reco.embedding.config import EmbeddingConfig
from reco.embedding.export import save_model
from reco.embedding.fit import train_step, validation_ranks
from reco.embedding.starspace import NegativeSampler, StarSpace, make_optimizer
from reco.errors import DataError
from reco.faults import FaultConfig, crash_once
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_embeddings")
STEP = "train_embeddings"
METRIC = "val_hit@10"


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker."""
    cfg = EmbeddingConfig(**loop_cfg["embedding"])
    faults = FaultConfig(**loop_cfg.get("faults", {}))
    quiet_worker_logs()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    torch.manual_seed(cfg.seed)
    model = StarSpace(loop_cfg["n_topics"], cfg.dim)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr)
    state, best = load_checkpoint(model, opt)
    if state.epoch and rank == 0:
        log.info(
            "resuming from the checkpoint after epoch %d (best %s %.4f at epoch %d)",
            state.epoch,
            METRIC,
            state.best_metric,
            state.best_epoch,
        )
    ddp = ray.train.torch.prepare_model(model)
    best = best or {k: v.clone() for k, v in model.state_dict().items()}
    train_it = ray.train.get_dataset_shard("train")
    val_it = ray.train.get_dataset_shard("validation")
    batches_per_epoch = max(1, loop_cfg["train_users"] // world // cfg.batch_size)

    while state.epoch < cfg.epochs and not state.stopped:
        epoch = state.epoch + 1
        sampler = NegativeSampler(
            loop_cfg["topic_counts"],
            cfg.negative_sampling,
            cfg.popularity_power,
            seed=cfg.seed * 7919 + epoch * 31 + rank,
        )
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        model.train()
        t0, last_log = time.perf_counter(), time.perf_counter()
        loss_sum, examples, steps = 0.0, 0, 0
        for batch in train_it.iter_batches(
            batch_size=cfg.batch_size,
            batch_format="pyarrow",
            local_shuffle_buffer_size=cfg.batch_size * 8,
            local_shuffle_seed=cfg.seed + epoch,
        ):
            loss, n = train_step(ddp, opt, batch, sampler, cfg, rng)
            loss_sum, examples, steps = loss_sum + loss * n, examples + n, steps + 1
            if epoch == 3 and steps == 2 and rank == world - 1:  # mid-epoch, after two checkpoints
                crash_once(faults, "train_embeddings.step", loop_cfg["run_uri"])
            if rank == 0 and time.perf_counter() - last_log > 30:
                log.info(
                    "epoch %d: ~%d%% (%d steps), loss %.4f",
                    epoch,
                    min(99, 100 * steps // batches_per_epoch),
                    steps,
                    loss_sum / max(examples, 1),
                )
                last_log = time.perf_counter()
        train_seconds = time.perf_counter() - t0
        model.eval()
        ranks = [
            validation_ranks(model, b, cfg.weighted_pooling)
            for b in val_it.iter_batches(batch_size=1024, batch_format="pyarrow")
        ]
        r = np.concatenate(ranks) if ranks else np.empty(0)
        loss_sum, examples, hits10, hits1, rank_sum, n_val, secs = allreduce(
            [
                loss_sum,
                examples,
                float((r < 10).sum()),
                float((r < 1).sum()),
                float((r + 1).sum()),
                float(len(r)),
                train_seconds,
            ]
        )
        metrics = {
            "epoch": epoch,
            "loss": loss_sum / max(examples, 1),
            METRIC: hits10 / max(n_val, 1),
            "val_hit@1": hits1 / max(n_val, 1),
            "val_mean_rank": rank_sum / max(n_val, 1),
            "val_targets": int(n_val),
            "train_examples": int(examples),
            "train_seconds": secs / world,
            "examples_per_second": examples / max(secs / world, 1e-9),
        }
        if state.update(metrics, METRIC, cfg.patience):
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if rank == 0:
            log.info(
                "epoch %d/%d: loss %.4f  %s %.4f  mean rank %.1f  %.0f examples/s%s",
                epoch,
                cfg.epochs,
                metrics["loss"],
                METRIC,
                metrics[METRIC],
                metrics["val_mean_rank"],
                metrics["examples_per_second"],
                "  (early stop)" if state.stopped else "",
            )
        with tempfile.TemporaryDirectory() as d:
            ckpt = save_checkpoint(d, model, opt, best, state) if rank == 0 else None
            ray.train.report(metrics, checkpoint=ckpt)


def fingerprint(cfg: EmbeddingConfig, run: RunDir) -> str:
    """Training run name: the same model settings on the same data resume; anything else starts fresh.

    Settings that do not change what one epoch computes (epochs, patience, workers) are left
    out, so a rerun with more epochs continues where the last run stopped.
    """
    relevant = cfg.model_dump(exclude={"num_workers", "cpus_per_worker", "epochs", "patience", "max_failures"})
    data = run.artifact(artifacts.HISTORIES)["files"]
    blob = json.dumps({"cfg": relevant, "data": {k: v["sha256"] for k, v in data.items()}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def datasets(cfg: Config, run: RunDir) -> tuple[ray.data.Dataset, ray.data.Dataset, int]:
    hist = read_artifact(run, artifacts.HISTORIES)
    train = hist.map_batches(
        select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 2}
    ).materialize()
    n_train = train.count()
    if n_train == 0:
        raise DataError(f"no training users with two or more interactions in {run.uri}/histories")
    val = hist.map_batches(
        select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 1, "need_targets": True}
    )
    val = val.limit(cfg.embedding.val_max_users).materialize()
    return train, val, n_train


def run(cfg: Config, run: RunDir) -> dict:
    emb = cfg.embedding
    topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id", "train_count"])
    counts = topics.column("train_count").to_numpy()
    with StepTimer("prepare datasets"):
        train, val, n_train = datasets(cfg, run)
    name = f"starspace-{fingerprint(emb, run)}"
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "embedding": emb.model_dump(),
            "n_topics": len(counts),
            "topic_counts": counts.tolist(),
            "train_users": n_train,
            "faults": cfg.faults.model_dump(),
            "run_uri": run.uri,
        },
        datasets={"train": train, "validation": val},
        scaling_config=ScalingConfig(
            num_workers=emb.num_workers, use_gpu=False, resources_per_worker={"CPU": emb.cpus_per_worker}
        ),
        run_config=run_config(run, name, emb.max_failures),
    )
    with StepTimer(f"Ray Train: {emb.num_workers} workers, {n_train} users, up to {emb.epochs} epochs") as timer:
        result = trainer.fit()
    best, state = best_of(result)
    model = StarSpace(len(counts), emb.dim)
    model.load_state_dict(best)
    meta = {
        "weighted_pooling": emb.weighted_pooling,
        "best_epoch": state.best_epoch,
        METRIC: state.best_metric,
        "config": emb.model_dump(),
        "train_run": name,
    }
    run.write_bytes(
        artifacts.STARSPACE_MODEL,
        save_model(model, meta),
        step=STEP,
        meta={"best_epoch": state.best_epoch, METRIC: state.best_metric},
    )
    total_examples = sum(h["train_examples"] for h in state.history)
    total_train_s = sum(h["train_seconds"] for h in state.history)
    summary = {
        "step": STEP,
        "train_run": name,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "early_stopped": state.stopped,
        "resumed_after_epochs": state.resumed_after,
        METRIC: state.best_metric,
        "train_users": n_train,
        "validation_users": val.count(),
        "workers": emb.num_workers,
        "fit_seconds": timer.seconds,
        "train_seconds": total_train_s,
        "examples_per_second": total_examples / max(total_train_s, 1e-9),
        "history": state.history,
    }
    run.write_json(artifacts.metrics("training"), summary, step=STEP)
    return {k: v for k, v in summary.items() if k != "history"}


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
