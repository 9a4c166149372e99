"""train_sequence: the PinnerFormer-style sequence user tower on Ray Train, users with Ray Data.

Training (``TorchTrainer``, DDP on CPU): each worker streams its shard of the training users'
histories, samples windows and takes sampled-softmax steps (reco.retrieval.sequence_fit), scores
its shard of the validation users, and the workers agree on loss and validation recall@50 with
an all-reduce. Every epoch reports and checkpoints on every rank; early stopping keeps the best
epoch; a rerun with the same settings and data resumes from the latest checkpoint.

Then user vectors: every user's latest engagements through the tower with Ray Data
``map_batches`` on an actor pool (ray_jobs.multi_interest.write_user_table). A model that is
saved with the same settings is not retrained (``--set retrieval.sequence.retrain=true`` forces
it), and a rerun then re-embeds only the users with engagements since the last run, as
PinnerFormer's daily batch job does.

Writes ``retrieval/sequence_tower/`` (meta, model, items, faiss index, users) and
``metrics/train_sequence.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch
from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ray_jobs.common import StepTimer, job_main, read_artifact
from ray_jobs.multi_interest import write_user_table
from ray_jobs.train_worker import allreduce, load_checkpoint, quiet_worker_logs, save_checkpoint
from reco.config import Config
from reco.errors import DataError
from reco.histories import select_role
from reco.retrieval.base import META, artifact_path
from reco.retrieval.config import SequenceConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.run_data import queries_from_histories
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.sequence_fit import make_model, make_optimizer, train_step, validation_batch
from reco.retrieval.sequence_tower import SequenceTowerRetriever
from reco.run_dir import RunDir
from reco.schema import StrictModel
from reco.starspace_fit import FitState

log = logging.getLogger("ray_jobs.train_sequence")
STEP = "train_sequence"
METRIC = "val_recall@50"
RUNTIME_FIELDS = {"num_workers", "cpus_per_worker", "max_failures", "embed_batch_size", "actors", "cpus_per_actor", "retrain", "val_max_users", "device"}


# -- Ray Train scaffolding shared with train_two_tower ---------------------------------------------

def end_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, best: dict, state: FitState, metrics: dict, rank: int,
              patience: int) -> dict:
    """Record the epoch, keep the best weights, checkpoint on rank 0 and report on every rank."""
    if state.update(metrics, METRIC, patience):
        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as d:
        ckpt = save_checkpoint(d, model, opt, best, state) if rank == 0 else None
        ray.train.report(metrics, checkpoint=ckpt)
    return best


def settings_fingerprint(section: StrictModel) -> str:
    return hashlib.sha256(json.dumps(section.model_dump(exclude=RUNTIME_FIELDS), sort_keys=True).encode()).hexdigest()[:12]


def run_name(prefix: str, section: StrictModel, run: RunDir) -> str:
    """Same settings on the same data resume the same Ray Train run; anything else starts fresh."""
    data = run.artifact("histories")["files"]
    blob = json.dumps({"settings": settings_fingerprint(section), "data": {k: v["sha256"] for k, v in data.items()}}, sort_keys=True)
    return f"{prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def model_is_current(run: RunDir, name: str, section: StrictModel) -> bool:
    rel = artifact_path(name, META)
    if rel not in run.manifest().get("artifacts", {}):
        return False
    return run.read_json(rel).get("fingerprint") == settings_fingerprint(section)


def training_datasets(run: RunDir, val_max_users: int) -> tuple[ray.data.Dataset, ray.data.Dataset, int]:
    hist = read_artifact(run, "histories").select_columns(["user_id", "role", "topics", "ts", "weights", "targets"])
    train = hist.map_batches(select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 2}).materialize()
    n_train = train.count()
    if n_train == 0:
        raise DataError(f"no training users with two or more interactions in {run.uri}/histories")
    val = hist.map_batches(select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 1, "need_targets": True})
    return train, val.limit(val_max_users).materialize(), n_train


def fit_on_ray(loop, loop_config: dict, datasets: dict, section: StrictModel, name: str, run: RunDir) -> tuple[dict, FitState, float]:
    """Run a worker loop on Ray Train; the best weights, the fit state and the wall time."""
    storage = run.local_path("train") if run.is_local() else run.path("train")
    trainer = TorchTrainer(
        loop, train_loop_config=loop_config, datasets=datasets,
        scaling_config=ScalingConfig(num_workers=section.num_workers, use_gpu=False, resources_per_worker={"CPU": section.cpus_per_worker}),
        run_config=RunConfig(name=name, storage_path=storage, storage_filesystem=None if run.is_local() else run.fs,
                             checkpoint_config=CheckpointConfig(num_to_keep=2), failure_config=FailureConfig(max_failures=section.max_failures),
                             logging_config=LoggingConfig(log_level="WARNING")))
    with StepTimer(f"Ray Train {name}: {section.num_workers} workers, up to {section.epochs} epochs") as timer:
        result = trainer.fit()
    if result.error is not None:
        raise result.error
    with result.checkpoint.as_directory() as d:
        best = torch.load(os.path.join(d, "best.pt"), weights_only=True)
        with open(os.path.join(d, "state.json")) as f:
            state = FitState.from_json(f.read())
    return best, state, timer.seconds


def train_summary(state: FitState, seconds: float, trained: bool) -> dict[str, Any]:
    return {"trained": trained, "epochs_run": state.epoch, "best_epoch": state.best_epoch, METRIC: state.best_metric,
            "early_stopped": state.stopped, "resumed_after_epochs": state.resumed_after, "fit_seconds": seconds}


# -- the sequence tower -------------------------------------------------------------------------------

def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker."""
    cfg = SequenceConfig(**loop_cfg["sequence"])
    quiet_worker_logs()
    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(1)
    n_topics = loop_cfg["n_topics"]
    model = make_model(n_topics, cfg)
    opt = make_optimizer(model, cfg)
    state, best = load_checkpoint(model, opt)
    ddp = ray.train.torch.prepare_model(model)
    best = best or {k: v.detach().clone() for k, v in model.state_dict().items()}
    probs = item_distribution(np.asarray(loop_cfg["topic_counts"]))
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    while state.epoch < cfg.epochs and not state.stopped:
        epoch = state.epoch + 1
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + rank)
        model.train()
        t0, loss_sum, anchors = time.perf_counter(), 0.0, 0
        for rep in range(cfg.sequences_per_user):
            for batch in train_it.iter_batches(batch_size=cfg.batch_size, batch_format="pyarrow",
                                               local_shuffle_buffer_size=cfg.batch_size * 4, local_shuffle_seed=cfg.seed + epoch * 100 + rep):
                seqs = UserSequences.from_table(batch)
                loss, n = train_step(ddp, opt, seqs, np.arange(len(seqs)), cfg, n_topics, probs, rng, gen)
                loss_sum, anchors = loss_sum + loss * n, anchors + n
        seconds = time.perf_counter() - t0
        model.eval()
        recall_sum, n_val = 0.0, 0
        for batch in val_it.iter_batches(batch_size=1024, batch_format="pyarrow"):
            s, n = validation_batch(model, queries_from_histories(batch))
            recall_sum, n_val = recall_sum + s, n_val + n
        loss_sum, anchors, recall_sum, n_val, seconds = allreduce([loss_sum, anchors, recall_sum, n_val, seconds])
        metrics = {"epoch": epoch, "loss": loss_sum / max(anchors, 1), METRIC: recall_sum / max(n_val, 1), "val_users": int(n_val),
                   "anchors": int(anchors), "train_seconds": seconds / ray.train.get_context().get_world_size()}
        if rank == 0:
            log.info("sequence epoch %d/%d: loss %.4f  %s %.4f", epoch, cfg.epochs, metrics["loss"], METRIC, metrics[METRIC])
        best = end_epoch(model, opt, best, state, metrics, rank, cfg.patience)


def train(cfg: Config, run: RunDir) -> dict:
    seq = cfg.retrieval.sequence
    counts = run.read_table("vocab/topics.parquet", columns=["train_count"]).column("train_count").to_numpy()
    with StepTimer("prepare datasets"):
        train_ds, val_ds, n_train = training_datasets(run, seq.val_max_users)
    best, state, seconds = fit_on_ray(train_loop, {"sequence": seq.model_dump(), "n_topics": len(counts), "topic_counts": counts.tolist()},
                                      {"train": train_ds, "validation": val_ds}, seq, run_name("sequence", seq, run), run)
    model = make_model(len(counts), seq)
    model.load_state_dict(best)
    retriever = SequenceTowerRetriever(cfg.retrieval).use_model(model)
    retriever.train_meta = {"fingerprint": settings_fingerprint(seq), "best_epoch": state.best_epoch, "epochs_run": state.epoch,
                            METRIC: state.best_metric, "train_users": n_train}
    retriever.save_model(run, STEP)
    return {**train_summary(state, seconds, True), "train_users": n_train, "history": state.history}


def run(cfg: Config, run: RunDir) -> dict:
    seq = cfg.retrieval.sequence
    name = SequenceTowerRetriever.name
    if seq.retrain or not model_is_current(run, name, seq):
        training = train(cfg, run)
    else:
        log.info("%s: a model with these settings is saved; only re-embedding users (retrieval.sequence.retrain=true retrains)", name)
        training = {"trained": False, **{k: v for k, v in run.read_json(artifact_path(name, META)).items() if k in ("best_epoch", METRIC)}}
    with StepTimer(f"user vectors (Ray Data, {seq.actors} actor(s))") as timer:
        users = write_user_table(run, name, batch_size=seq.embed_batch_size, actors=seq.actors, cpus_per_actor=seq.cpus_per_actor, step=STEP)
    summary = {"step": STEP, "objective": seq.objective, **training, **users, "embed_seconds": timer.seconds}
    run.write_json("metrics/train_sequence.json", summary, step=STEP)
    return {k: v for k, v in summary.items() if k != "history"}


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
