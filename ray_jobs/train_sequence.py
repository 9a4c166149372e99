"""train_sequence: the PinnerFormer-style sequence user tower on Ray Train, users with Ray Data.

Training (``TorchTrainer``, DDP on CPU): each worker streams its shard of the training users'
histories, samples windows and takes sampled-softmax steps (reco.retrieval.sequence_fit), scores
its shard of the validation users, and the workers agree on loss and validation recall@50 with
an all-reduce. Every epoch reports and checkpoints on every rank; early stopping keeps the best
epoch; a rerun with the same settings and data resumes from the latest checkpoint.

Then user vectors: every user's latest engagements through the tower with Ray Data
``map_batches`` on an actor pool (ray_jobs.retriever_training.run_retriever_job). A model that is
saved with the same settings is not retrained (``--set retrieval.sequence.retrain=true`` forces
it), and a rerun then re-embeds only the users with engagements since the last run, as
PinnerFormer's daily batch job does.

Writes ``retrieval/sequence_tower/`` (meta, model, items, faiss index, users) and
``metrics/train_sequence.json``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
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
)
from ray_jobs.train_worker import quiet_worker_logs
from reco import artifacts
from reco.config import Config
from reco.retrieval.config import SequenceConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.run_data import queries_from_histories
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.sequence_fit import make_model, make_optimizer, train_step, validation_batch
from reco.retrieval.sequence_tower import SequenceTowerRetriever
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.train_sequence")
STEP = "train_sequence"


def train_loop(loop_cfg: dict) -> None:
    """Runs on every Ray Train worker."""
    cfg = SequenceConfig(**loop_cfg["sequence"])
    quiet_worker_logs()
    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(1)
    n_topics = loop_cfg["n_topics"]
    model = make_model(n_topics, cfg)
    opt = make_optimizer(model, cfg)
    state, best, ddp = start_worker(model, opt)
    probs = item_distribution(np.asarray(loop_cfg["topic_counts"]))
    train_it, val_it = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("validation")
    for epoch, rng in epochs(state, cfg, model):
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + rank)
        t0, loss_sum, anchors = time.perf_counter(), 0.0, 0
        for rep in range(cfg.sequences_per_user):
            for batch in train_it.iter_batches(
                batch_size=cfg.batch_size,
                batch_format="pyarrow",
                local_shuffle_buffer_size=cfg.batch_size * 4,
                local_shuffle_seed=cfg.seed + epoch * 100 + rep,
            ):
                seqs = UserSequences.from_table(batch)
                loss, n = train_step(ddp, opt, seqs, np.arange(len(seqs)), cfg, n_topics, probs, rng, gen)
                loss_sum, anchors = loss_sum + loss * n, anchors + n
        seconds = time.perf_counter() - t0
        model.eval()
        recall_sum, n_val = 0.0, 0
        for batch in val_it.iter_batches(batch_size=1024, batch_format="pyarrow"):
            s, n = validation_batch(model, queries_from_histories(batch))
            recall_sum, n_val = recall_sum + s, n_val + n
        sums = {"loss_sum": loss_sum, "anchors": anchors, "recall_sum": recall_sum, "n_val": n_val, "seconds": seconds}
        best = close_epoch("sequence", epoch, sums, "anchors", model, opt, best, state, cfg.epochs, cfg.patience)


def train(cfg: Config, run: RunDir) -> dict:
    seq = cfg.retrieval.sequence
    counts = run.read_table(artifacts.TOPIC_VOCAB, columns=["train_count"]).column("train_count").to_numpy()
    with StepTimer("prepare datasets"):
        train_ds, val_ds, n_train = training_datasets(run, seq.val_max_users)
    best, state, seconds = fit_on_ray(
        train_loop,
        {"sequence": seq.model_dump(), "n_topics": len(counts), "topic_counts": counts.tolist()},
        {"train": train_ds, "validation": val_ds},
        seq,
        run_name("sequence", seq, run),
        run,
    )
    model = make_model(len(counts), seq)
    model.load_state_dict(best)
    return save_trained(SequenceTowerRetriever(cfg.retrieval).use_model(model), seq, state, seconds, n_train, run, STEP)


def run(cfg: Config, run: RunDir) -> dict:
    seq = cfg.retrieval.sequence
    return run_retriever_job(
        run, SequenceTowerRetriever.name, seq, lambda: train(cfg, run), STEP, objective=seq.objective
    )


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
