"""Matrix factorisation: a user-item dot product with biases (the strong baseline of
Rendle et al. 2020, "Neural Collaborative Filtering vs. Matrix Factorization Revisited")."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import IdEmbedding


class MatrixFactorization(nn.Module):
    """logit = <p_u, q_i> + b_u + b_i + b. Uses the user and item id fields only."""

    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.user = IdEmbedding(layout, layout.user_field, cfg.embed_dim, init_std=0.1)
        self.item = IdEmbedding(layout, layout.item_field, cfg.embed_dim, init_std=0.1)
        self.user_bias = IdEmbedding(layout, layout.user_field, 1, init_std=0.0)
        self.item_bias = IdEmbedding(layout, layout.item_field, 1, init_std=0.0)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        dot = (self.user(cat) * self.item(cat)).sum(dim=1, keepdim=True)
        return dot + self.user_bias(cat) + self.item_bias(cat) + self.bias
