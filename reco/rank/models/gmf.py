"""GMF (He et al. 2017, NCF): an element-wise user-item product weighted by a learned output layer."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import IdEmbedding


class GMF(nn.Module):
    """logit = h^T (p_u * q_i) + b. Its embeddings and h seed NeuMF's GMF half when pre-training."""

    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.user = IdEmbedding(layout, layout.user_field, cfg.embed_dim)
        self.item = IdEmbedding(layout, layout.item_field, cfg.embed_dim)
        self.out = nn.Linear(cfg.embed_dim, 1)

    def features(self, cat: torch.Tensor) -> torch.Tensor:
        return self.user(cat) * self.item(cat)

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(cat))
