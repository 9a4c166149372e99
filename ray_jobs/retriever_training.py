"""What the retrieval training jobs share: Ray Train scaffolding and the job's shape.

train_sequence, train_two_tower and train_mf each bring a worker loop and a model; this module
runs the loop on Ray Train (``TorchTrainer``, checkpoints every epoch, early stopping, a rerun
with the same settings and data resumes the same run), saves the best model as the retriever's
artifact and computes every user's vector with Ray Data (ray_jobs.multi_interest.write_user_table,
incremental on reruns). A model saved with the same settings is not retrained
(``retrieval.<section>.retrain=true`` forces it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer

from ray_jobs.common import StepTimer, read_artifact
from ray_jobs.multi_interest import write_user_table
from ray_jobs.train_worker import allreduce, best_of, load_checkpoint, run_config, save_checkpoint
from reco import artifacts
from reco.data.histories import select_role
from reco.errors import DataError
from reco.fit_state import FitState
from reco.retrieval.base import META, Retriever
from reco.retrieval.config import RayJobSettings
from reco.retrieval.data import Queries
from reco.retrieval.run_data import queries_from_histories
from reco.retrieval.training import validation_recall
from reco.run_dir import RunDir
from reco.schema import StrictModel

log = logging.getLogger("ray_jobs.retriever_training")
METRIC = "val_recall@50"
RUNTIME_FIELDS = set(RayJobSettings.model_fields) | {"device"}  # how a job runs, not what it learns


def end_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    best: dict,
    state: FitState,
    metrics: dict,
    rank: int,
    patience: int,
) -> dict:
    """Record the epoch, keep the best weights, checkpoint on rank 0 and report on every rank."""
    if state.update(metrics, METRIC, patience):
        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as d:
        ckpt = save_checkpoint(d, model, opt, best, state) if rank == 0 else None
        ray.train.report(metrics, checkpoint=ckpt)
    return best


def settings_fingerprint(section: StrictModel) -> str:
    return hashlib.sha256(json.dumps(section.model_dump(exclude=RUNTIME_FIELDS), sort_keys=True).encode()).hexdigest()[
        :12
    ]


def run_name(prefix: str, section: StrictModel, run: RunDir) -> str:
    """Same settings on the same data resume the same Ray Train run; anything else starts fresh."""
    data = run.artifact(artifacts.HISTORIES)["files"]
    blob = json.dumps(
        {"settings": settings_fingerprint(section), "data": {k: v["sha256"] for k, v in data.items()}}, sort_keys=True
    )
    return f"{prefix}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def model_is_current(run: RunDir, name: str, section: StrictModel) -> bool:
    rel = artifacts.retriever(name, META)
    if not run.has(rel):
        return False
    return run.read_json(rel).get("fingerprint") == settings_fingerprint(section)


def training_datasets(run: RunDir, val_max_users: int) -> tuple[ray.data.Dataset, ray.data.Dataset, int]:
    hist = read_artifact(run, "histories").select_columns(["user_id", "role", "topics", "ts", "weights", "targets"])
    train = hist.map_batches(
        select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 2}
    ).materialize()
    n_train = train.count()
    if n_train == 0:
        raise DataError(f"no training users with two or more interactions in {run.uri}/histories")
    val = hist.map_batches(
        select_role, batch_format="pyarrow", fn_kwargs={"role": "train", "min_input": 1, "need_targets": True}
    )
    return train, val.limit(val_max_users).materialize(), n_train


def fit_on_ray(
    loop, loop_config: dict, datasets: dict, section: StrictModel, name: str, run: RunDir
) -> tuple[dict, FitState, float]:
    """Run a worker loop on Ray Train; the best weights, the fit state and the wall time."""
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config,
        datasets=datasets,
        scaling_config=ScalingConfig(
            num_workers=section.num_workers, use_gpu=False, resources_per_worker={"CPU": section.cpus_per_worker}
        ),
        run_config=run_config(run, name, section.max_failures),
    )
    with StepTimer(f"Ray Train {name}: {section.num_workers} workers, up to {section.epochs} epochs") as timer:
        result = trainer.fit()
    best, state = best_of(result)
    return best, state, timer.seconds


def train_summary(state: FitState, seconds: float, trained: bool) -> dict[str, Any]:
    return {
        "trained": trained,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        METRIC: state.best_metric,
        "early_stopped": state.stopped,
        "resumed_after_epochs": state.resumed_after,
        "fit_seconds": seconds,
    }


def start_worker(model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[FitState, dict, torch.nn.Module]:
    """On a worker: resume from the latest checkpoint if there is one, wrap the model for DDP.
    Returns the fit's state, the best weights so far and the wrapped model to train."""
    state, best = load_checkpoint(model, opt)
    ddp = ray.train.torch.prepare_model(model)
    return state, best or {k: v.detach().clone() for k, v in model.state_dict().items()}, ddp


def epochs(state: FitState, section: StrictModel, model: torch.nn.Module) -> Iterator[tuple[int, np.random.Generator]]:
    """The epochs left to train (resumed, early-stopped), each with this worker's own generator;
    the model is put in training mode before each."""
    rank = ray.train.get_context().get_world_rank()
    while state.epoch < section.epochs and not state.stopped:
        epoch = state.epoch + 1
        model.train()
        yield epoch, np.random.default_rng([section.seed, epoch, rank])


def validation_sums(val_it, user_vectors: Callable[[Queries], np.ndarray], items: np.ndarray) -> tuple[float, int]:
    """This worker's validation shard: recall@50 summed over users with targets, and their count."""
    recall_sum, n_val = 0.0, 0
    for batch in val_it.iter_batches(batch_size=1024, batch_format="pyarrow"):
        q = queries_from_histories(batch)
        has = int((np.diff(q.target_offsets) > 0).sum())
        recall_sum += validation_recall(user_vectors(q), items, q) * has
        n_val += has
    return recall_sum, n_val


def close_epoch(
    label: str,
    epoch: int,
    sums: dict[str, float],
    count: str,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    best: dict,
    state: FitState,
    n_epochs: int,
    patience: int,
) -> dict:
    """Sum the epoch's figures over the workers (``sums``: loss_sum, ``count``, recall_sum,
    n_val, seconds), log them once, then :func:`end_epoch`. Returns the best weights so far."""
    ctx = ray.train.get_context()
    keys = list(sums)
    total = dict(zip(keys, allreduce([sums[k] for k in keys])))
    metrics = {
        "epoch": epoch,
        "loss": total["loss_sum"] / max(total[count], 1),
        METRIC: total["recall_sum"] / max(total["n_val"], 1),
        "val_users": int(total["n_val"]),
        count: int(total[count]),
        "train_seconds": total["seconds"] / ctx.get_world_size(),
    }
    if ctx.get_world_rank() == 0:
        log.info("%s epoch %d/%d: loss %.4f  %s %.4f", label, epoch, n_epochs, metrics["loss"], METRIC, metrics[METRIC])
    return end_epoch(model, opt, best, state, metrics, ctx.get_world_rank(), patience)


def save_trained(
    retriever: Retriever,
    section: StrictModel,
    state: FitState,
    seconds: float,
    n_train: int,
    run: RunDir,
    step: str,
    **extra: Any,
) -> dict[str, Any]:
    """Save a retriever holding the best weights (fingerprinted with its settings); the summary."""
    retriever.train_meta = {
        "fingerprint": settings_fingerprint(section),
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        METRIC: state.best_metric,
        "train_users": n_train,
        **extra,
    }
    retriever.save_model(run, step)
    return {**train_summary(state, seconds, True), "train_users": n_train, **extra, "history": state.history}


def run_retriever_job(
    run: RunDir, name: str, section: StrictModel, train: Callable[[], dict], step: str, **extra: Any
) -> dict[str, Any]:
    """Train (unless a model with these settings is saved), then (re)embed users with Ray Data."""
    if section.retrain or not model_is_current(run, name, section):
        training = train()
    else:
        log.info("%s: a model with these settings is saved; only re-embedding users (retrain=true retrains)", name)
        training = {
            "trained": False,
            **{k: v for k, v in run.read_json(artifacts.retriever(name, META)).items() if k in ("best_epoch", METRIC)},
        }
    with StepTimer(f"user vectors (Ray Data, {section.actors} actor(s))") as timer:
        users = write_user_table(
            run,
            name,
            batch_size=section.embed_batch_size,
            actors=section.actors,
            cpus_per_actor=section.cpus_per_actor,
            step=step,
        )
    summary = {"step": step, **extra, **training, **users, "embed_seconds": timer.seconds}
    run.write_json(artifacts.metrics(step), summary, step=step)
    return {k: v for k, v in summary.items() if k != "history"}
