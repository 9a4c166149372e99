"""What the trained retrievers share: validation recall, the epoch loop, and StarSpace in-process.

Ray Train workers (ray_jobs/train_sequence.py, train_two_tower.py) run the same steps; the
benchmark runs them in a plain loop here. Early stopping keeps the best epoch's weights by
validation recall@50 (all-action), the benchmark's headline figure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from reco.embedding.config import EmbeddingConfig
from reco.embedding.fit import train_step
from reco.embedding.starspace import NegativeSampler, StarSpace, make_optimizer
from reco.fit_state import FitState
from reco.retrieval.base import top_k
from reco.retrieval.data import Queries, TrainingData, UserSequences
from reco.retrieval.protocol import recall_scores

log = logging.getLogger(__name__)
VAL_METRIC = "val_recall@50"


def dense_candidates(
    user_vectors: np.ndarray, item_vectors: np.ndarray, inputs: UserSequences, k: int, batch: int = 1024
) -> np.ndarray:
    """(n, k) best items by inner product, none from the user's input; -1 pads."""
    out = np.full((len(inputs), k), -1, np.int64)
    for s in range(0, len(inputs), batch):
        scores = user_vectors[s : s + batch] @ item_vectors.T
        for i in range(len(scores)):
            ids, _ = top_k(scores[i], inputs.row(s + i)[0], k)
            out[s + i, : len(ids)] = ids
    return out


def validation_recall(user_vectors: np.ndarray, item_vectors: np.ndarray, queries: Queries, k: int = 50) -> float:
    cands = dense_candidates(user_vectors, item_vectors, queries.inputs, k)
    return recall_scores(cands, queries, (k,)).summary[f"recall@{k}"]


def user_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


def fit_epochs(
    model: torch.nn.Module,
    run_epoch: Callable[[int], dict],
    validate: Callable[[], float] | None,
    epochs: int,
    patience: int,
    label: str,
) -> FitState:
    """Train ``epochs`` epochs (fewer if validation stops improving); loads the best weights back."""
    state = FitState()
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    while state.epoch < epochs and not state.stopped:
        t = time.perf_counter()
        model.train()
        metrics = run_epoch(state.epoch + 1)
        model.eval()
        metrics[VAL_METRIC] = validate() if validate is not None else float("nan")
        metrics["seconds"] = time.perf_counter() - t
        if validate is None:  # a fixed number of epochs (the refit on the whole inputs): keep the last
            state.epoch += 1
            state.history.append({"epoch": state.epoch, **metrics})
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif state.update({"epoch": state.epoch + 1, **metrics}, VAL_METRIC, patience):
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log.info(
            "%s epoch %d: loss %.4f  %s %.4f  (%.1fs)",
            label,
            state.epoch,
            metrics.get("loss", float("nan")),
            VAL_METRIC,
            metrics[VAL_METRIC],
            metrics["seconds"],
        )
    model.load_state_dict(best)
    model.eval()
    return state


def starspace_topic_vectors(data: TrainingData, cfg: EmbeddingConfig) -> tuple[np.ndarray, FitState]:
    """The spine's StarSpace trained in this process on ``data`` (unit topic vectors, fit state).

    The same model, loss and leave-one-out steps as train_embeddings (reco.embedding.fit);
    validation recall@50 of the pooled users picks the epoch.
    """
    torch.manual_seed(cfg.seed)
    model = StarSpace(data.n_topics, cfg.dim)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr)
    table = data.sequences.to_table()
    counts = data.topic_counts()

    def run_epoch(epoch: int) -> dict:
        sampler = NegativeSampler(counts, cfg.negative_sampling, cfg.popularity_power, seed=cfg.seed * 7919 + epoch)
        rng = np.random.default_rng([cfg.seed, epoch])
        loss_sum, n = 0.0, 0
        for rows in user_batches(table.num_rows, cfg.batch_size, rng):
            loss, m = train_step(model, opt, table.take(rows), sampler, cfg, rng)
            loss_sum, n = loss_sum + loss * m, n + m
        return {"loss": loss_sum / max(n, 1)}

    def validate() -> float:
        from reco.retrieval.pooled import pool

        items = model.topic_vectors().numpy()
        users = pool(data.validation.inputs, items, cfg.weighted_pooling)
        return validation_recall(users, items, data.validation)

    state = fit_epochs(
        model, run_epoch, validate if data.validation is not None else None, cfg.epochs, cfg.patience, "starspace"
    )
    return model.topic_vectors().numpy(), state
