"""The steps of StarSpace training, free of Ray: one gradient step, validation, early stopping.

ray_jobs/train_embeddings.py runs these inside Ray Train workers; a benchmark or a notebook
can run them in a plain loop over pyarrow batches.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from reco.config import EmbeddingConfig
from reco.embeddings import history_inputs
from reco.histories import flat_lists
from reco.holdout_eval import target_ranks
from reco.starspace import NegativeSampler, StarSpace, hinge_loss, make_examples, softmax_loss


@dataclass
class FitState:
    """Progress that a checkpoint carries so a rerun resumes where it stopped."""

    epoch: int = 0  # epochs completed
    best_metric: float = float("-inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False  # early stopping triggered
    history: list[dict] = field(default_factory=list)
    resumed_after: list[int] = field(default_factory=list)  # epochs completed at each resume

    def update(self, metrics: dict, key: str, patience: int) -> bool:
        """Record an epoch; True if it is the best so far. Sets ``stopped`` after ``patience`` bad epochs."""
        self.epoch += 1
        self.history.append(metrics)
        value = metrics[key]
        if value > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs >= patience
        return False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FitState":
        return cls(**json.loads(text))


def train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    batch: pa.Table,
    sampler: NegativeSampler,
    cfg: EmbeddingConfig,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """One gradient step on a batch of history rows; returns (loss, examples)."""
    flat, lengths = flat_lists(batch.column("topics"))
    wflat = flat_lists(batch.column("weights"))[0] if cfg.weighted_pooling else None
    ex = make_examples(flat, lengths, wflat, cfg.samples_per_user, cfg.max_history, rng)
    negatives = sampler.sample(cfg.negatives)
    pos, neg = model(ex, negatives)
    if cfg.loss == "hinge":
        loss = hinge_loss(pos, neg, ex.targets, negatives, cfg.margin)
    else:
        loss = softmax_loss(pos, neg, ex.targets, negatives, cfg.temperature)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()), len(ex)


def validation_ranks(model: StarSpace, batch: pa.Table, weighted: bool) -> np.ndarray:
    """Ranks of each user's held-out targets given their input topics (see reco.holdout_eval)."""
    ids, offsets, w = history_inputs(batch, weighted)
    users = model.user_vectors(ids, offsets, w)
    scores = (users @ model.topic_vectors().T).numpy()
    in_flat, in_len = flat_lists(batch.column("topics"))
    tg_flat, tg_len = flat_lists(batch.column("targets"))
    return target_ranks(scores, in_flat, in_len, tg_flat, tg_len)
