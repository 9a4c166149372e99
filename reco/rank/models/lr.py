"""Logistic regression over one-hot ids and dense values: the linear baseline."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import FieldEmbedding


class LogisticRegression(nn.Module):
    """One weight per id (an embedding of size ``tasks``) and per dense value, plus a bias."""

    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.weights = FieldEmbedding(layout, n_tasks, init_std=0.0)
        self.bias = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.weights(cat, dense).sum(dim=1) + self.bias
