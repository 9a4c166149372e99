"""The two-tower model's training steps, free of Ray: examples, one gradient step, a local fit.

An example is (user, history without the target, target): StarSpace's leave-one-out examples
(reco.embedding.starspace.make_examples) plus the user. ray_jobs/train_two_tower.py runs
:func:`train_step` in Ray Train workers; :func:`fit_two_tower` runs it in one process.
"""

from __future__ import annotations

import numpy as np
import torch

from reco.embedding.starspace import make_examples
from reco.fit_state import FitState
from reco.retrieval.config import TwoTowerConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.sampled_softmax import item_distribution, sampled_softmax_loss
from reco.retrieval.training import fit_epochs, user_batches, validation_recall
from reco.retrieval.two_tower_model import TwoTower


def make_model(
    n_users: int,
    n_topics: int,
    cfg: TwoTowerConfig,
    item_features: np.ndarray | None,
    user_features: np.ndarray | None,
    trained_users: np.ndarray,
) -> TwoTower:
    """A fresh model; ``trained_users`` get their own id rows, everyone else shares the unknown row."""
    torch.manual_seed(cfg.seed)
    model = TwoTower(
        n_users,
        n_topics,
        cfg.dim,
        cfg.hidden,
        cfg.use_user_id,
        item_features if cfg.use_item_features else None,
        user_features if cfg.use_user_features else None,
    )
    trained = np.asarray(trained_users, np.int64)
    model.known_users[torch.from_numpy(trained[(trained >= 0) & (trained < n_users)])] = True
    return model


def examples(
    seqs: UserSequences, cfg: TwoTowerConfig, n_users: int, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """Leave-one-out examples of every user with two or more topics, with id dropout."""
    ex = make_examples(seqs.topics, seqs.lengths, None, cfg.samples_per_user, cfg.max_history, rng)
    # make_examples yields samples_per_user examples for each user with >= 2 topics, in row order.
    users = seqs.user_ids[np.repeat(np.flatnonzero(seqs.lengths >= 2), cfg.samples_per_user)]
    assert len(users) == len(ex), "make_examples changed how it orders examples"
    feat_rows = np.where(users < n_users, users, n_users)
    id_rows = np.where(rng.random(len(users)) < cfg.id_dropout, n_users, feat_rows)
    return {
        "id_rows": torch.from_numpy(id_rows),
        "feat_rows": torch.from_numpy(feat_rows),
        "bag_ids": ex.input_ids,
        "bag_offsets": ex.offsets,
        "targets": ex.targets,
        "owners": torch.from_numpy(users),
    }


def users_per_step(cfg: TwoTowerConfig) -> int:
    """Users whose examples make one step's batch (``batch_size`` examples, the in-batch negatives)."""
    return max(1, cfg.batch_size // cfg.samples_per_user)


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    seqs: UserSequences,
    cfg: TwoTowerConfig,
    n_users: int,
    item_probs: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """One in-batch softmax step on the examples of a batch of users (``model`` may be DDP-wrapped).

    Every rank must step the same number of times under DDP, so a batch without examples still
    runs a zero-weight step on a stand-in example.
    """
    ex = examples(seqs, cfg, n_users, rng)
    weight = 1.0
    if len(ex["targets"]) == 0:
        one = torch.tensor([n_users])
        ex = {
            "id_rows": one,
            "feat_rows": one,
            "bag_ids": torch.tensor([0]),
            "bag_offsets": torch.tensor([0]),
            "targets": torch.tensor([0]),
            "owners": torch.tensor([-1]),
        }
        weight = 0.0
    users, items = model(ex["id_rows"], ex["feat_rows"], ex["bag_ids"], ex["bag_offsets"], ex["targets"])
    targets = ex["targets"]
    loss = (
        sampled_softmax_loss(
            users,
            targets,
            items,
            targets[:0],
            items[:0],
            cfg.temperature,
            item_probs if cfg.logq else None,
            owners=ex["owners"],
        )
        * weight
    )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()), int(len(targets) * weight)


def fit_two_tower(data: TrainingData, cfg: TwoTowerConfig) -> tuple[TwoTower, FitState]:
    """Train in this process; early stopping on ``data.validation`` when there is one."""
    model = make_model(
        data.n_users, data.n_topics, cfg, data.item_features, data.user_features, data.sequences.user_ids
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    probs = item_distribution(data.topic_counts())

    def run_epoch(epoch: int) -> dict:
        rng = np.random.default_rng([cfg.seed, epoch])
        loss_sum, n = 0.0, 0
        for rows in user_batches(len(data.sequences), users_per_step(cfg), rng):
            loss, m = train_step(model, opt, data.sequences.take(rows), cfg, data.n_users, probs, rng)
            loss_sum, n = loss_sum + loss * m, n + m
        return {"loss": loss_sum / max(n, 1), "examples": n}

    def validate() -> float:
        return validation_recall(
            model.user_vectors(data.validation.inputs, cfg.max_history), model.item_vectors(), data.validation
        )

    state = fit_epochs(
        model, run_epoch, validate if data.validation is not None else None, cfg.epochs, cfg.patience, "two_tower"
    )
    return model, state
