"""Two-tower retrieval (Yi et al., RecSys 2019): a user tower and an item tower, in-batch softmax.

The user tower reads the user's id (an "unknown" row for users who never trained, learnt by
hiding the id of a share of training examples), their features, and the mean embedding of
their history; the item tower reads the item's id and features (genres and decade on MovieLens).
Both end in an MLP and a unit vector. Training pairs a user (history minus the target) with one
engaged item; every other item of the batch is a negative, with the log-Q correction for
in-batch sampling. Item vectors go into a faiss index; user vectors are precomputed in batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reco.retrieval.data import UserSequences, ragged_offsets


def mlp(inputs: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, out))


class TwoTower(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_topics: int,
        dim: int,
        hidden: int,
        use_user_id: bool = True,
        item_features: np.ndarray | int | None = None,
        user_features: np.ndarray | int | None = None,
    ):
        """Feature arguments: a matrix, or only its width (a model about to load a state dict)."""
        super().__init__()
        self.n_users, self.n_topics, self.dim = n_users, n_topics, dim
        item_features = (
            np.zeros((n_topics, item_features or 0)) if not isinstance(item_features, np.ndarray) else item_features
        )
        user_features = (
            np.zeros((n_users, user_features or 0)) if not isinstance(user_features, np.ndarray) else user_features
        )
        f_item, f_user = item_features.shape[1], user_features.shape[1]
        self.arch = {
            "n_users": n_users,
            "n_topics": n_topics,
            "dim": dim,
            "hidden": hidden,
            "use_user_id": use_user_id,
            "item_features": f_item,
            "user_features": f_user,
        }
        self.user_ids = nn.Embedding(n_users + 1, dim) if use_user_id else None  # row n_users: unknown user
        self.history = nn.Embedding(n_topics, dim)
        self.user_mlp = mlp(dim * (2 if use_user_id else 1) + f_user, hidden, dim)
        self.item_ids = nn.Embedding(n_topics, dim)
        self.item_mlp = mlp(dim + f_item, hidden, dim)
        self.register_buffer("item_features", torch.as_tensor(item_features, dtype=torch.float32))
        self.register_buffer(
            "user_features", torch.as_tensor(np.vstack([user_features, np.zeros((1, f_user))]), dtype=torch.float32)
        )
        self.register_buffer("known_users", torch.zeros(n_users + 1, dtype=torch.bool))
        for emb in (self.history, self.item_ids) + ((self.user_ids,) if use_user_id else ()):
            nn.init.normal_(emb.weight, std=0.05)

    def rows(self, user_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(id rows, feature rows): the unknown row n_users for users outside the vocabulary, and
        for id rows also for users who never trained."""
        feat = torch.where(
            (user_ids >= 0) & (user_ids < self.n_users), user_ids, torch.full_like(user_ids, self.n_users)
        )
        return torch.where(self.known_users[feat], feat, torch.full_like(feat, self.n_users)), feat

    def users(
        self, id_rows: torch.Tensor, feat_rows: torch.Tensor, bag_ids: torch.Tensor, bag_offsets: torch.Tensor
    ) -> torch.Tensor:
        parts = [F.embedding_bag(bag_ids, self.history.weight, bag_offsets, mode="mean")]
        if self.user_ids is not None:
            parts.append(self.user_ids(id_rows))
        parts.append(self.user_features[feat_rows])
        return F.normalize(self.user_mlp(torch.cat(parts, dim=1)), dim=-1)

    def items(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.item_mlp(torch.cat([self.item_ids(ids), self.item_features[ids]], dim=1)), dim=-1)

    def forward(
        self,
        id_rows: torch.Tensor,
        feat_rows: torch.Tensor,
        bag_ids: torch.Tensor,
        bag_offsets: torch.Tensor,
        item_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors and item vectors in one call (DDP syncs what one forward uses)."""
        return self.users(id_rows, feat_rows, bag_ids, bag_offsets), self.items(item_ids)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        return self.items(torch.arange(self.n_topics)).numpy()

    @torch.no_grad()
    def user_vectors(self, users: UserSequences, max_history: int, batch_size: int = 2048) -> np.ndarray:
        """(n, dim) from each user's id (if known), features and latest ``max_history`` topics."""
        self.eval()
        out = np.zeros((len(users), self.dim), np.float32)
        for s in range(0, len(users), batch_size):
            part = users.take(np.arange(s, min(len(users), s + batch_size))).tail(max_history)
            id_rows, feat_rows = self.rows(torch.from_numpy(part.user_ids))
            offsets = torch.from_numpy(ragged_offsets(part.lengths)[:-1])
            out[s : s + len(part)] = self.users(id_rows, feat_rows, torch.from_numpy(part.topics), offsets).numpy()
        return out
