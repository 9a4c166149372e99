"""NCF's MLP model: user and item embeddings concatenated and passed through a ReLU tower."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, IdEmbedding


class NCFMLP(nn.Module):
    """logit = h^T tower([p_u, q_i]) + b. Its embeddings and tower seed NeuMF's MLP half."""

    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.user = IdEmbedding(layout, layout.user_field, cfg.embed_dim)
        self.item = IdEmbedding(layout, layout.item_field, cfg.embed_dim)
        self.tower = MLP(2 * cfg.embed_dim, cfg.mlp_dims, cfg.dropout)
        self.out = nn.Linear(self.tower.out_dim, 1)

    def features(self, cat: torch.Tensor) -> torch.Tensor:
        return self.tower(torch.cat([self.user(cat), self.item(cat)], dim=1))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(cat))
