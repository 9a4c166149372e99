"""train_mf: matrix factorisation (the ranking stack's MF) as a retriever, on Ray Train.

The retrieval benchmark's MF baseline, made servable: each Ray Train worker streams its shard of
the training users' histories, turns each batch of users into rows (every engagement a positive,
``retrieval.mf.negatives`` uniform topics per positive) and takes one binary cross-entropy step
per batch (reco.rank.training.train_step, so the same step as the ranking stack's MF); the
workers agree on loss and validation recall@50 with an all-reduce. Checkpoints, early stopping
and resume, then every user's vector with Ray Data (users the model never trained on are folded
in), by ray_jobs.retriever_training.

Writes ``retrieval/mf/`` (meta, model, items, faiss index, users) and ``metrics/train_mf.json``;
/v1/recommend then serves ``"retriever": "mf"``.
"""

from __future__ import annotations

import logging
import time

import pyarrow as pa
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
from reco.rank.pair_mf import MfFactors, bce_step, make_pair_mf
from reco.retrieval.config import MfConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.mf import MfRetriever, training_rows
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_mf")
STEP = "train_mf"


def users_per_step(cfg: MfConfig, mean_history: float) -> int:
    """Users whose rows (positives and negatives) make about ``batch_size`` rows: one step per
    batch of users keeps every DDP worker at the same number of steps."""
    return max(1, round(cfg.batch_size / ((1 + cfg.negatives) * max(mean_history, 1.0))))


def history_lengths(batch: pa.Table) -> pa.Table:
    return pa.table({"n": pc.list_value_length(batch.column("topics"))})


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker."""
    cfg = MfConfig(**loop_cfg["mf"])
    quiet_worker_logs()
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    n_topics = loop_cfg["n_topics"]
    model = make_pair_mf(loop_cfg["n_users"], n_topics, cfg.dim)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state, best, ddp = start_worker(model, opt)
    step_users = loop_cfg["users_per_step"]
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    for epoch, rng in epochs(state, cfg, model):
        t0, loss_sum, examples = time.perf_counter(), 0.0, 0
        for batch in train_it.iter_batches(
            batch_size=step_users,
            batch_format="pyarrow",
            local_shuffle_buffer_size=step_users * 4,
            local_shuffle_seed=cfg.seed + epoch,
        ):
            rows = training_rows(UserSequences.from_table(batch), n_topics, cfg.negatives, rng)
            loss_sum += bce_step(ddp, opt, rows) * len(rows)
            examples += len(rows)
        seconds = time.perf_counter() - t0
        model.eval()
        factors = MfFactors(model)
        recall_sum, n_val = validation_sums(val_it, lambda q, f=factors: f.users(q.inputs.user_ids), factors.items())
        sums = {
            "loss_sum": loss_sum,
            "examples": examples,
            "recall_sum": recall_sum,
            "n_val": n_val,
            "seconds": seconds,
        }
        best = close_epoch("mf", epoch, sums, "examples", model, opt, best, state, cfg.epochs, cfg.patience)


def train(cfg: Config, run: RunDir) -> dict:
    mf = cfg.retrieval.mf
    n_topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id"]).num_rows
    n_users = run.read_table(artifacts.USER_VOCAB, columns=["user_id"]).num_rows
    with StepTimer("prepare datasets"):
        train_ds, val_ds, n_train = training_datasets(run, mf.val_max_users)
        known = train_ds.select_columns(["user_id"]).to_pandas()["user_id"].to_numpy()
        engagements = train_ds.map_batches(history_lengths, batch_format="pyarrow").sum("n")
    mean_history = engagements / max(n_train, 1)
    loop_cfg = {
        "mf": mf.model_dump(),
        "n_users": n_users,
        "n_topics": n_topics,
        "users_per_step": users_per_step(mf, mean_history),
    }
    best, state, seconds = fit_on_ray(
        train_loop, loop_cfg, {"train": train_ds, "validation": val_ds}, mf, run_name("mf", mf, run), run
    )
    model = make_pair_mf(n_users, n_topics, mf.dim)
    model.load_state_dict(best)
    return save_trained(
        MfRetriever(cfg.retrieval).use_model(model, known, n_users),
        mf,
        state,
        seconds,
        n_train,
        run,
        STEP,
        users_per_step=loop_cfg["users_per_step"],
    )


def run(cfg: Config, run: RunDir) -> dict:
    return run_retriever_job(run, MfRetriever.name, cfg.retrieval.mf, lambda: train(cfg, run), STEP)


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
