"""Multi-task CTR models: click and conversion heads over a shared bottom or an MMoE.

- shared bottom (Caruana 1997): one MLP feeds every task's tower;
- MMoE (Ma et al. 2018): a few expert MLPs, mixed per task by its own softmax gate;
- ESMM option (Ma et al. 2018): the second head predicts conversion given a click, and the
  model outputs pCTCVR = pCTR x pCVR, trained on all impressions, so the conversion model never
  learns from the click-selected sample alone. Outputs stay logits: logit(pCTR x pCVR).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, FieldEmbedding


def product_logit(logit_a: torch.Tensor, logit_b: torch.Tensor) -> torch.Tensor:
    """logit(sigmoid(a) * sigmoid(b)), computed in log space so it stays finite."""
    log_p = nn.functional.logsigmoid(logit_a) + nn.functional.logsigmoid(logit_b)
    return log_p - torch.log(-torch.expm1(log_p).clamp(max=-1e-12))


class MultiTask(nn.Module):
    def __init__(
        self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int, mode: Literal["shared_bottom", "mmoe"]
    ):
        super().__init__()
        if cfg.esmm and n_tasks != 2:
            raise ValueError(f"ESMM needs exactly two labels (click, conversion), got {n_tasks}")
        self.mode, self.esmm = mode, cfg.esmm
        self.embed = FieldEmbedding(layout, cfg.embed_dim)
        in_dim = layout.n_fields * cfg.embed_dim
        n_experts = cfg.experts if mode == "mmoe" else 1
        self.experts = nn.ModuleList(MLP(in_dim, cfg.expert_dims, cfg.dropout) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_experts) for _ in range(n_tasks)) if mode == "mmoe" else None
        self.towers = nn.ModuleList(
            MLP(self.experts[0].out_dim, cfg.tower_dims, cfg.dropout, out_dim=1) for _ in range(n_tasks)
        )

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        x = self.embed(cat, dense).flatten(1)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, H)
        if self.gates is None:
            inputs = [experts[:, 0]] * len(self.towers)
        else:
            inputs = [torch.einsum("be,beh->bh", torch.softmax(g(x), dim=1), experts) for g in self.gates]
        logits = torch.cat([t(h) for t, h in zip(self.towers, inputs)], dim=1)
        if self.esmm:
            return torch.stack([logits[:, 0], product_logit(logits[:, 0], logits[:, 1])], dim=1)
        return logits
