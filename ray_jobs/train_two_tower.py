"""train_two_tower: the two-tower retrieval model on Ray Train, item vectors in faiss, users with Ray Data.

Training (``TorchTrainer``, DDP on CPU): each worker streams its shard of the training users'
histories, turns each batch of users into leave-one-out examples (user id, features, history
without the target; the target item with its features) and takes an in-batch softmax step with
the log-Q correction (reco.retrieval.two_tower_fit). Validation recall@50 is all-reduced every
epoch; checkpoints, early stopping and resume as in train_sequence. Features come from the data
set (MovieLens: genres and decade per movie, age, gender and occupation per user).

Then the item tower's vectors go into ``retrieval/two_tower/items.faiss`` and every user's
vector is computed with Ray Data ``map_batches`` (incremental on reruns, as train_sequence).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow.compute as pc
import ray
import ray.train
import ray.train.torch
import torch

from ray_jobs.common import StepTimer, job_main
from ray_jobs.multi_interest import write_user_table
from ray_jobs.train_sequence import (
    METRIC,
    end_epoch,
    fit_on_ray,
    model_is_current,
    run_name,
    settings_fingerprint,
    train_summary,
    training_datasets,
)
from ray_jobs.train_worker import allreduce, load_checkpoint, quiet_worker_logs
from reco.config import Config
from reco.retrieval.base import META, artifact_path
from reco.retrieval.config import TwoTowerConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.run_data import queries_from_histories, run_features
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.training import validation_recall
from reco.retrieval.two_tower import TwoTowerRetriever
from reco.retrieval.two_tower_fit import make_model, train_step, users_per_step
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_two_tower")
STEP = "train_two_tower"


def trained_users(run: RunDir) -> np.ndarray:
    users = run.read_table("vocab/users.parquet", columns=["user_id", "role"])
    return users.filter(pc.equal(users.column("role"), "train")).column("user_id").to_numpy()


def build_model(run: RunDir, cfg: TwoTowerConfig) -> "torch.nn.Module":
    n_topics = run.read_table("vocab/topics.parquet", columns=["topic_id"]).num_rows
    n_users = run.read_table("vocab/users.parquet", columns=["user_id"]).num_rows
    items, users = run_features(run)
    return make_model(n_users, n_topics, cfg, items, users, trained_users(run))


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker; reads the model's sizes and features from the run directory."""
    cfg = TwoTowerConfig(**loop_cfg["two_tower"])
    quiet_worker_logs()
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    torch.set_num_threads(1)
    model = build_model(RunDir(loop_cfg["run_uri"]), cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state, best = load_checkpoint(model, opt)
    ddp = ray.train.torch.prepare_model(model)
    best = best or {k: v.detach().clone() for k, v in model.state_dict().items()}
    probs = item_distribution(np.asarray(loop_cfg["topic_counts"]))
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    while state.epoch < cfg.epochs and not state.stopped:
        epoch = state.epoch + 1
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        model.train()
        t0, loss_sum, examples = time.perf_counter(), 0.0, 0
        for batch in train_it.iter_batches(batch_size=users_per_step(cfg), batch_format="pyarrow",
                                           local_shuffle_buffer_size=users_per_step(cfg) * 4, local_shuffle_seed=cfg.seed + epoch):
            loss, n = train_step(ddp, opt, UserSequences.from_table(batch), cfg, model.n_users, probs, rng)
            loss_sum, examples = loss_sum + loss * n, examples + n
        seconds = time.perf_counter() - t0
        model.eval()
        recall_sum, n_val = 0.0, 0
        items = model.item_vectors()
        for batch in val_it.iter_batches(batch_size=1024, batch_format="pyarrow"):
            q = queries_from_histories(batch)
            has = int((np.diff(q.target_offsets) > 0).sum())
            recall_sum += validation_recall(model.user_vectors(q.inputs, cfg.max_history), items, q) * has
            n_val += has
        loss_sum, examples, recall_sum, n_val, seconds = allreduce([loss_sum, examples, recall_sum, n_val, seconds])
        metrics = {"epoch": epoch, "loss": loss_sum / max(examples, 1), METRIC: recall_sum / max(n_val, 1), "val_users": int(n_val),
                   "examples": int(examples), "train_seconds": seconds / ctx.get_world_size()}
        if rank == 0:
            log.info("two-tower epoch %d/%d: loss %.4f  %s %.4f", epoch, cfg.epochs, metrics["loss"], METRIC, metrics[METRIC])
        best = end_epoch(model, opt, best, state, metrics, rank, cfg.patience)


def train(cfg: Config, run: RunDir) -> dict:
    tt = cfg.retrieval.two_tower
    counts = run.read_table("vocab/topics.parquet", columns=["train_count"]).column("train_count").to_numpy()
    with StepTimer("prepare datasets"):
        train_ds, val_ds, n_train = training_datasets(run, tt.val_max_users)
    best, state, seconds = fit_on_ray(train_loop, {"two_tower": tt.model_dump(), "run_uri": run.uri, "topic_counts": counts.tolist()},
                                      {"train": train_ds, "validation": val_ds}, tt, run_name("two-tower", tt, run), run)
    model = build_model(run, tt)
    model.load_state_dict(best)
    retriever = TwoTowerRetriever(cfg.retrieval).use_model(model)
    retriever.train_meta = {"fingerprint": settings_fingerprint(tt), "best_epoch": state.best_epoch, "epochs_run": state.epoch,
                            METRIC: state.best_metric, "train_users": n_train, "item_features": model.arch["item_features"],
                            "user_features": model.arch["user_features"]}
    retriever.save_model(run, STEP)
    return {**train_summary(state, seconds, True), "train_users": n_train, "item_features": model.arch["item_features"],
            "user_features": model.arch["user_features"], "history": state.history}


def run(cfg: Config, run: RunDir) -> dict:
    tt = cfg.retrieval.two_tower
    name = TwoTowerRetriever.name
    if tt.retrain or not model_is_current(run, name, tt):
        training = train(cfg, run)
    else:
        log.info("%s: a model with these settings is saved; only re-embedding users (retrieval.two_tower.retrain=true retrains)", name)
        training = {"trained": False, **{k: v for k, v in run.read_json(artifact_path(name, META)).items() if k in ("best_epoch", METRIC)}}
    with StepTimer(f"user vectors (Ray Data, {tt.actors} actor(s))") as timer:
        users = write_user_table(run, name, batch_size=tt.embed_batch_size, actors=tt.actors, cpus_per_actor=tt.cpus_per_actor, step=STEP)
    summary = {"step": STEP, **training, **users, "embed_seconds": timer.seconds}
    run.write_json("metrics/train_two_tower.json", summary, step=STEP)
    return {k: v for k, v in summary.items() if k != "history"}


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
