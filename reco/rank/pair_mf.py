"""The ranking stack's MF over (user id, item id) pairs, as the rest of the library uses it.

The MF retriever (``reco.retrieval.mf``) and its Ray Train job (``ray_jobs.train_mf``) train
the ranking stack's :class:`~reco.rank.models.mf.MatrixFactorization`, not a second MF: built on
a two-field id layout (id 0 is the out-of-vocabulary bucket, so dense ids shift by one), fed
id-pair rows, stepped on binary cross-entropy with the ranking stack's own step, and read back
as factor tables. This module is the one place they reach the ranking stack through.
"""

from __future__ import annotations

import numpy as np
import torch

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout, Rows
from reco.rank.losses import bce_loss
from reco.rank.models import build_model
from reco.rank.training import train_step


def pair_layout(n_users: int, n_items: int) -> FeatureLayout:
    return FeatureLayout(("user_id", "topic_id"), (n_users + 1, n_items + 1), (1, 1), 0, user_field=0, item_field=1)


def make_pair_mf(n_users: int, n_items: int, dim: int) -> torch.nn.Module:
    """The ranking stack's MF over (user id, item id)."""
    return build_model(RankModelConfig(name="mf", embed_dim=dim), pair_layout(n_users, n_items), 1)


def pair_rows(users: np.ndarray, items: np.ndarray, labels: np.ndarray) -> Rows:
    """Encoded rows of dense (user, item) pairs with their labels, ids shifted past the OOV bucket."""
    cat = np.stack([np.asarray(users) + 1, np.asarray(items) + 1], axis=1).astype(np.int64)
    return Rows(cat, np.zeros((len(cat), 0), np.float32), np.asarray(labels, np.float32)[:, None], cat[:, 0].copy())


def bce_step(model: torch.nn.Module, opt: torch.optim.Optimizer, rows: Rows) -> float:
    """One gradient step on binary cross-entropy (the ranking stack's step); returns the loss."""
    return train_step(model, opt, bce_loss, rows)


class MfFactors:
    """The factor tables of a pair MF, for maximum inner product search (rows 0 are the OOV bucket).

    Items are ``[q_i, b_i]`` and users ``[p_u, 1]``: the user's own bias does not change their ranking.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def items(self) -> np.ndarray:
        q = self.model.item.table.weight.detach()[1:]
        b = self.model.item_bias.table.weight.detach()[1:]
        return torch.cat([q, b], dim=1).numpy()

    def users(self, dense_ids: np.ndarray) -> np.ndarray:
        p = self.model.user.table.weight.detach()[torch.from_numpy(np.asarray(dense_ids, np.int64) + 1)]
        return torch.cat([p, torch.ones(len(p), 1)], dim=1).numpy()
