"""DCNv2 (Wang et al. 2021): explicit cross layers beside (parallel) or before (stacked) a DNN."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, CrossNetwork, FieldEmbedding


class DCNv2(nn.Module):
    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        dim = layout.n_fields * cfg.embed_dim
        self.embed = FieldEmbedding(layout, cfg.embed_dim)
        self.cross = CrossNetwork(dim, cfg.cross_layers, cfg.cross_rank)
        self.dnn = MLP(dim, cfg.mlp_dims, cfg.dropout)
        self.parallel = cfg.cross_structure == "parallel"
        self.out = nn.Linear(dim + self.dnn.out_dim if self.parallel else self.dnn.out_dim, 1)

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        x0 = self.embed(cat, dense).flatten(1)
        if self.parallel:
            return self.out(torch.cat([self.cross(x0), self.dnn(x0)], dim=1))
        return self.out(self.dnn(self.cross(x0)))
