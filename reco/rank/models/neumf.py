"""NeuMF (He et al. 2017): GMF and MLP with their own embeddings, fused by one output layer.

With pre-training (the NCF paper's option), the two halves start from a trained GMF and a
trained MLP, and the output layer from their output layers weighted alpha : 1 - alpha.
"""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.models.gmf import GMF
from reco.rank.models.mlp import NCFMLP


class NeuMF(nn.Module):
    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        self.gmf = GMF(layout, cfg)
        self.mlp = NCFMLP(layout, cfg)
        # the halves' own output layers are replaced by one fused layer
        del self.gmf.out, self.mlp.out
        self.out = nn.Linear(cfg.embed_dim + self.mlp.tower.out_dim, 1)

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.gmf.features(cat), self.mlp.features(cat)], dim=1))

    @torch.no_grad()
    def load_pretrained(
        self, gmf_state: dict[str, torch.Tensor], mlp_state: dict[str, torch.Tensor], alpha: float
    ) -> None:
        """Start from a trained GMF and MLP (state dicts of :class:`GMF` and :class:`NCFMLP`)."""
        gmf_body = {k: v for k, v in gmf_state.items() if not k.startswith("out.")}
        mlp_body = {k: v for k, v in mlp_state.items() if not k.startswith("out.")}
        self.gmf.load_state_dict(gmf_body)
        self.mlp.load_state_dict(mlp_body)
        self.out.weight.copy_(
            torch.cat([alpha * gmf_state["out.weight"], (1 - alpha) * mlp_state["out.weight"]], dim=1)
        )
        self.out.bias.copy_(alpha * gmf_state["out.bias"] + (1 - alpha) * mlp_state["out.bias"])
