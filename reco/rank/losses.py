"""Training losses on logits: binary cross-entropy, and focal loss (Lin et al. 2017) as an
option that down-weights easy examples. Both average over examples and sum over tasks."""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.config import RankTrainConfig


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=0).sum()


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """-alpha_t (1 - p_t)^gamma log p_t; gamma=0 and alpha=0.5 give half the BCE."""
    ce = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * labels + (1 - p) * (1 - labels)
    alpha_t = alpha * labels + (1 - alpha) * (1 - labels)
    return (alpha_t * (1 - p_t).pow(gamma) * ce).mean(dim=0).sum()


def make_loss(cfg: RankTrainConfig):
    """The configured loss as ``f(logits, labels) -> scalar``."""
    if cfg.loss == "focal":
        return lambda logits, labels: focal_loss(logits, labels, cfg.focal_gamma, cfg.focal_alpha)
    return bce_loss
