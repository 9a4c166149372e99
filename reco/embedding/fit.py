"""The steps of StarSpace training, free of Ray: one gradient step and the validation ranks.

ray_jobs/train_embeddings.py runs these inside Ray Train workers; a benchmark or a notebook
can run them in a plain loop over pyarrow batches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from reco.data.histories import flat_lists
from reco.embedding.config import EmbeddingConfig
from reco.embedding.export import history_inputs
from reco.embedding.holdout import target_ranks
from reco.embedding.starspace import NegativeSampler, StarSpace, hinge_loss, make_examples, softmax_loss


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
    """Ranks of each user's held-out targets given their input topics (see reco.embedding.holdout)."""
    ids, offsets, w = history_inputs(batch, weighted)
    users = model.user_vectors(ids, offsets, w)
    scores = (users @ model.topic_vectors().T).numpy()
    in_flat, in_len = flat_lists(batch.column("topics"))
    tg_flat, tg_len = flat_lists(batch.column("targets"))
    return target_ranks(scores, in_flat, in_len, tg_flat, tg_len)
