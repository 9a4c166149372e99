"""StarSpace-style user embeddings (Wu et al. 2018, train mode 1), as Pinterest's paper uses.

A user is the pooled embedding of the topics they engaged with; a topic is one row of the same
table. Training takes a user's history, hides one topic (the target), pools the rest and asks
that the target be closer in cosine than sampled negatives by a margin (hinge), or ranks it
first in a sampled softmax. Because users are built from topics, the model has one row per
topic and none per user: it grows with topics, and a new user embeds without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Examples:
    """A training batch: pooled inputs as a flat EmbeddingBag input, and one target each."""

    input_ids: torch.Tensor  # (total,) topic ids
    offsets: torch.Tensor  # (B,) start of each example in input_ids
    input_weights: torch.Tensor | None  # (total,) pooling weights, or None for a plain mean
    targets: torch.Tensor  # (B,)

    def __len__(self) -> int:
        return len(self.targets)


def make_examples(
    topics_flat: np.ndarray,
    lengths: np.ndarray,
    weights_flat: np.ndarray | None,
    samples_per_user: int,
    max_history: int,
    rng: np.random.Generator,
) -> Examples:
    """Leave-one-out examples from a batch of histories, fully vectorised.

    Each user with two or more topics yields ``samples_per_user`` examples; each picks a random
    target and pools up to ``max_history`` of the other topics (a random subset if longer).
    """
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    keep = np.flatnonzero(lengths >= 2)
    users = np.repeat(keep, samples_per_user)
    L = lengths[users]
    tgt_pos = starts[users] + (rng.random(len(users)) * L).astype(np.int64)
    # Every (example, position) pair; drop the target, then cap each example's bag.
    ex = np.repeat(np.arange(len(users)), L)
    pos = np.repeat(starts[users], L) + (np.arange(L.sum()) - np.repeat(np.cumsum(L) - L, L))
    in_bag = pos != tgt_pos[ex]
    ex, pos = ex[in_bag], pos[in_bag]
    if (L - 1 > max_history).any():
        order = np.lexsort((rng.random(len(ex)), ex))
        ex, pos = ex[order], pos[order]
        seg_start = np.r_[0, np.cumsum(np.bincount(ex, minlength=len(users)))[:-1]]
        rank = np.arange(len(ex)) - seg_start[ex]
        ex, pos = ex[rank < max_history], pos[rank < max_history]
    sizes = np.bincount(ex, minlength=len(users))
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    w = pooling_weights(weights_flat[pos], sizes) if weights_flat is not None else None
    return Examples(
        torch.from_numpy(topics_flat[pos].astype(np.int64)),
        torch.from_numpy(offsets.astype(np.int64)),
        w,
        torch.from_numpy(topics_flat[tgt_pos].astype(np.int64)),
    )


def pooling_weights(weights_flat: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    """Per-topic pooling weights, log1p(weight) normalised to sum to one within each bag."""
    raw = np.log1p(np.maximum(weights_flat, 0)).astype(np.float32) + 1e-3
    seg = np.repeat(np.arange(len(lengths)), lengths)
    return torch.from_numpy((raw / np.bincount(seg, weights=raw, minlength=len(lengths))[seg]).astype(np.float32))


class StarSpace(nn.Module):
    """One embedding table for topics; users are (weighted) means of their topics' rows."""

    def __init__(self, n_topics: int, dim: int, init_std: float = 0.1):
        super().__init__()
        self.n_topics, self.dim = n_topics, dim
        self.topics = nn.Embedding(n_topics, dim)
        nn.init.normal_(self.topics.weight, std=init_std)

    def pool(self, input_ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if weights is None:
            return F.embedding_bag(input_ids, self.topics.weight, offsets, mode="mean")
        return F.embedding_bag(input_ids, self.topics.weight, offsets, mode="sum", per_sample_weights=weights)

    def forward(self, ex: Examples, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosine of each example's user to its target (B,) and to the shared negatives (B, N)."""
        user = F.normalize(self.pool(ex.input_ids, ex.offsets, ex.input_weights), dim=-1)
        pos = (user * F.normalize(self.topics(ex.targets), dim=-1)).sum(-1)
        neg = user @ F.normalize(self.topics(negatives), dim=-1).T
        return pos, neg

    @torch.no_grad()
    def topic_vectors(self) -> torch.Tensor:
        return F.normalize(self.topics.weight, dim=-1)

    @torch.no_grad()
    def user_vectors(
        self, input_ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Unit-norm user vectors; a user with no topics gets the zero vector."""
        return F.normalize(self.pool(input_ids, offsets, weights), dim=-1)


def hinge_loss(
    pos: torch.Tensor, neg: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, margin: float
) -> torch.Tensor:
    """StarSpace's margin ranking loss, summed over negatives, averaged over examples.

    A sampled negative that equals the example's target is not a negative and is masked out.
    """
    valid = targets[:, None] != negatives[None, :]
    viol = F.relu(margin - pos[:, None] + neg) * valid
    return viol.sum(1).mean()


def softmax_loss(
    pos: torch.Tensor, neg: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Sampled softmax: the target against the shared negatives, cosines over a temperature."""
    neg = neg.masked_fill(targets[:, None] == negatives[None, :], float("-inf"))
    logits = torch.cat([pos[:, None], neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long))


class NegativeSampler:
    """Draws negative topics uniformly or by smoothed popularity (count ** power)."""

    def __init__(self, counts: np.ndarray, mode: str = "popularity", power: float = 0.5, seed: int = 0):
        counts = np.asarray(counts, dtype=np.float64)
        p = np.ones_like(counts) if mode == "uniform" else (counts + 1.0) ** power
        self.probs = torch.from_numpy(p / p.sum())
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=self.generator)


def make_optimizer(params, name: str, lr: float) -> torch.optim.Optimizer:
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)
