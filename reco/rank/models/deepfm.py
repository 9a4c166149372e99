"""DeepFM (Guo et al. 2017): a factorisation machine and a DNN sharing one field embedding."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, FieldEmbedding, fm_pairwise


class DeepFM(nn.Module):
    """logit = bias + first-order weights + FM pairwise term + DNN(flattened embeddings)."""

    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.first = FieldEmbedding(layout, 1, init_std=0.0)
        self.embed = FieldEmbedding(layout, cfg.embed_dim)
        self.dnn = MLP(layout.n_fields * cfg.embed_dim, cfg.mlp_dims, cfg.dropout, out_dim=1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        e = self.embed(cat, dense)
        return self.bias + self.first(cat, dense).sum(dim=1) + fm_pairwise(e) + self.dnn(e.flatten(1))
