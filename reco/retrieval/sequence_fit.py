"""The sequence tower's training steps, free of Ray: one gradient step, validation, a local fit.

ray_jobs/train_sequence.py runs :func:`train_step` and :func:`validation_batch` inside Ray
Train workers on their dataset shards; :func:`fit_sequence_tower` runs them in one process.
"""

from __future__ import annotations

import numpy as np
import torch

from reco.fit_state import FitState
from reco.retrieval.config import SequenceConfig
from reco.retrieval.data import Queries, TrainingData, UserSequences
from reco.retrieval.sampled_softmax import item_distribution, sampled_softmax_loss
from reco.retrieval.sequence_model import SequenceTower
from reco.retrieval.sequence_windows import training_windows
from reco.retrieval.training import fit_epochs, user_batches, validation_recall


def make_model(n_topics: int, cfg: SequenceConfig) -> SequenceTower:
    torch.manual_seed(cfg.seed)
    return SequenceTower(n_topics, cfg.dim, cfg.max_len, cfg.layers, cfg.heads, cfg.dropout)


def make_optimizer(model: torch.nn.Module, cfg: SequenceConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    seqs: UserSequences,
    rows: np.ndarray,
    cfg: SequenceConfig,
    n_topics: int,
    item_probs: torch.Tensor,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> tuple[float, int]:
    """One step on training windows of ``rows`` (``model`` may be DDP-wrapped); (loss, anchors).

    Every rank must call this the same number of times under DDP, so a batch without anchors
    still runs a (zero-weight) backward pass.
    """
    w = training_windows(
        seqs, rows, cfg.max_len, cfg.objective, cfg.window, cfg.anchors_per_sequence, n_topics, rng, cfg.window_seconds
    )
    if len(w.rows) == 0:
        w = training_windows(
            seqs, np.flatnonzero(seqs.lengths >= 2)[:1], cfg.max_len, cfg.objective, cfg.window, 1, n_topics, rng
        )
        weight = 0.0
    else:
        weight = 1.0
    dev = next(model.parameters()).device
    positives = torch.from_numpy(w.positives).to(dev)
    random_ids = torch.randint(0, n_topics, (cfg.negatives,), generator=gen).to(dev)
    users, items = model(
        *(torch.from_numpy(x).to(dev) for x in (w.tokens, w.gaps, w.anchor_window, w.anchor_col)),
        torch.cat([positives, random_ids]),
    )
    a = len(positives)
    loss = (
        sampled_softmax_loss(
            users,
            positives,
            items[:a],
            random_ids,
            items[a:],
            cfg.temperature,
            item_probs.to(dev) if cfg.logq else None,
            owners=torch.from_numpy(w.anchor_window).to(dev),
        )
        * weight
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()), int(a * weight)


def run_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    seqs: UserSequences,
    cfg: SequenceConfig,
    n_topics: int,
    item_probs: torch.Tensor,
    epoch: int,
    rank: int = 0,
) -> dict:
    """``sequences_per_user`` passes over the users in shuffled batches."""
    rng = np.random.default_rng([cfg.seed, epoch, rank])
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + rank)
    loss_sum, anchors = 0.0, 0
    for _ in range(cfg.sequences_per_user):
        for rows in user_batches(len(seqs), cfg.batch_size, rng):
            loss, n = train_step(model, opt, seqs, rows, cfg, n_topics, item_probs, rng, gen)
            loss_sum, anchors = loss_sum + loss * n, anchors + n
    return {"loss": loss_sum / max(anchors, 1), "anchors": anchors}


def validation_batch(model: SequenceTower, queries: Queries, k: int = 50) -> tuple[float, int]:
    """(summed recall@k, users) of a validation batch: summable across workers."""
    users = model.user_vectors(queries.inputs)
    has = np.diff(queries.target_offsets) > 0
    return validation_recall(users, model.item_vectors(), queries, k) * int(has.sum()), int(has.sum())


def fit_sequence_tower(data: TrainingData, cfg: SequenceConfig) -> tuple[SequenceTower, FitState]:
    """Train in this process (on ``cfg.device``); early stopping on ``data.validation`` when there is one.

    The model comes back on the CPU, where serving and the batch jobs use it.
    """
    model = make_model(data.n_topics, cfg).to(cfg.device)
    opt = make_optimizer(model, cfg)
    seqs = data.sequences.take(np.flatnonzero(data.sequences.lengths >= 2))
    probs = item_distribution(data.topic_counts()).to(cfg.device)

    def validate() -> float:
        return validation_recall(model.user_vectors(data.validation.inputs), model.item_vectors(), data.validation)

    state = fit_epochs(
        model,
        lambda e: run_epoch(model, opt, seqs, cfg, data.n_topics, probs, e),
        validate if data.validation is not None else None,
        cfg.epochs,
        cfg.patience,
        f"sequence/{cfg.objective}",
    )
    return model.cpu(), state
