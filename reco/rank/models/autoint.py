"""AutoInt+ (Song et al. 2019): stacked multi-head self-attention over fields, with residual
connections, plus a DNN on the same embeddings; their logits add."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, FieldEmbedding, SelfAttention


class AutoIntPlus(nn.Module):
    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.embed = FieldEmbedding(layout, cfg.embed_dim)
        dims = [cfg.embed_dim] + [cfg.attention_dim] * cfg.attention_layers
        self.attention = nn.Sequential(
            *(SelfAttention(dims[i], dims[i + 1], cfg.attention_heads) for i in range(cfg.attention_layers))
        )
        self.attention_out = nn.Linear(layout.n_fields * cfg.attention_dim, 1)
        self.dnn = MLP(layout.n_fields * cfg.embed_dim, cfg.mlp_dims, cfg.dropout, out_dim=1)

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        e = self.embed(cat, dense)
        return self.attention_out(self.attention(e).flatten(1)) + self.dnn(e.flatten(1))
