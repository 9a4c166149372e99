"""train_two_tower: the two-tower retrieval model on Ray Train, item vectors in faiss, users with Ray Data.

Training (``TorchTrainer``, DDP on CPU): each worker streams its shard of the training users'
histories, turns each batch of users into leave-one-out examples (user id, features, history
without the target; the target item with its features) and takes an in-batch softmax step with
the log-Q correction (reco.retrieval.two_tower_fit). Validation recall@50 is all-reduced every
epoch; checkpoints, early stopping and resume by ray_jobs.retriever_training. Features come from the data
set (MovieLens: genres and decade per movie, age, gender and occupation per user).

Then the item tower's vectors go into ``retrieval/two_tower/items.faiss`` and every user's
vector is computed with Ray Data ``map_batches`` (incremental on reruns, as train_sequence).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow.compute as pc
import ray.train
import torch

from ray_jobs.common import StepTimer, job_main
from ray_jobs.retriever_training import (
    close_epoch,
    epochs,
    fit_on_ray,
    run_name,
    run_retriever_job,
    save_trained,
    start_worker,
    training_datasets,
    validation_sums,
)
from ray_jobs.train_worker import quiet_worker_logs
from reco import artifacts
from reco.config import Config
from reco.retrieval.config import TwoTowerConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.run_data import run_features
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.two_tower import TwoTowerRetriever
from reco.retrieval.two_tower_fit import make_model, train_step, users_per_step
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_two_tower")
STEP = "train_two_tower"


def trained_users(run: RunDir) -> np.ndarray:
    users = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "role"])
    return users.filter(pc.equal(users.column("role"), "train")).column("user_id").to_numpy()


def build_model(run: RunDir, cfg: TwoTowerConfig) -> torch.nn.Module:
    n_topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id"]).num_rows
    n_users = run.read_table(artifacts.USER_VOCAB, columns=["user_id"]).num_rows
    items, users = run_features(run)
    return make_model(n_users, n_topics, cfg, items, users, trained_users(run))


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker; reads the model's sizes and features from the run directory."""
    cfg = TwoTowerConfig(**loop_cfg["two_tower"])
    quiet_worker_logs()
    torch.set_num_threads(1)
    model = build_model(RunDir(loop_cfg["run_uri"]), cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state, best, ddp = start_worker(model, opt)
    probs = item_distribution(np.asarray(loop_cfg["topic_counts"]))
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    for epoch, rng in epochs(state, cfg, model):
        t0, loss_sum, examples = time.perf_counter(), 0.0, 0
        for batch in train_it.iter_batches(
            batch_size=users_per_step(cfg),
            batch_format="pyarrow",
            local_shuffle_buffer_size=users_per_step(cfg) * 4,
            local_shuffle_seed=cfg.seed + epoch,
        ):
            loss, n = train_step(ddp, opt, UserSequences.from_table(batch), cfg, model.n_users, probs, rng)
            loss_sum, examples = loss_sum + loss * n, examples + n
        seconds = time.perf_counter() - t0
        model.eval()
        recall_sum, n_val = validation_sums(
            val_it, lambda q: model.user_vectors(q.inputs, cfg.max_history), model.item_vectors()
        )
        sums = {
            "loss_sum": loss_sum,
            "examples": examples,
            "recall_sum": recall_sum,
            "n_val": n_val,
            "seconds": seconds,
        }
        best = close_epoch("two-tower", epoch, sums, "examples", model, opt, best, state, cfg.epochs, cfg.patience)


def train(cfg: Config, run: RunDir) -> dict:
    tt = cfg.retrieval.two_tower
    counts = run.read_table(artifacts.TOPIC_VOCAB, columns=["train_count"]).column("train_count").to_numpy()
    with StepTimer("prepare datasets"):
        train_ds, val_ds, n_train = training_datasets(run, tt.val_max_users)
    best, state, seconds = fit_on_ray(
        train_loop,
        {"two_tower": tt.model_dump(), "run_uri": run.uri, "topic_counts": counts.tolist()},
        {"train": train_ds, "validation": val_ds},
        tt,
        run_name("two-tower", tt, run),
        run,
    )
    model = build_model(run, tt)
    model.load_state_dict(best)
    return save_trained(
        TwoTowerRetriever(cfg.retrieval).use_model(model),
        tt,
        state,
        seconds,
        n_train,
        run,
        STEP,
        item_features=model.arch["item_features"],
        user_features=model.arch["user_features"],
    )


def run(cfg: Config, run: RunDir) -> dict:
    return run_retriever_job(run, TwoTowerRetriever.name, cfg.retrieval.two_tower, lambda: train(cfg, run), STEP)


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
