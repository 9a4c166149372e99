"""RE-SORT-style CTR model (after Wu et al. 2024, "RE-SORT: Removing Spurious Correlation in
Multilevel Interaction for CTR Prediction"): two streams of multi-scale retention over the
fields, each fed through its own feature-selection gate, fused by a bilinear aggregation.

- Feature selection (as in FinalMLP / RE-SORT): stream s sees the flattened field embeddings
  times 2*sigmoid(MLP(context_s)); the contexts are the user-id and the item-id embeddings
  (a learned vector where a data set has no such field).
- Multi-scale retention (RetNet-style, as RE-SORT's MSR blocks): swish(Q) K^T masked by a
  causal decay D[n, m] = gamma^(n-m) over the field sequence, no softmax; every head decays at
  its own gamma, so heads see interactions at different ranges; group norm, residual, ReLU.

Not included: the paper's spurious-correlation-elimination module (Laplacian kernel mapping
with sample reweighting); this is the interaction architecture only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.layers import MLP, FieldEmbedding


class MultiScaleRetention(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, heads: int, n_fields: int):
        super().__init__()
        if out_dim % heads:
            raise ValueError(f"retention_dim {out_dim} is not divisible by retention_heads {heads}")
        self.heads, self.head_dim = heads, out_dim // heads
        self.q, self.k, self.v = (nn.Linear(in_dim, out_dim, bias=False) for _ in range(3))
        self.residual = nn.Linear(in_dim, out_dim, bias=False)
        self.norm = nn.GroupNorm(heads, out_dim)
        gammas = 1 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), heads))
        n = torch.arange(n_fields)
        dist = (n[:, None] - n[None, :]).float()
        decay = gammas[:, None, None] ** dist.clamp(min=0) * (dist >= 0)
        self.register_buffer("decay", decay, persistent=False)  # (heads, F, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _ = x.shape

        def split(t):
            return t.view(b, f, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(nn.functional.silu(self.q(x))), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) * self.decay
        out = (scores @ v).transpose(1, 2).reshape(b * f, -1)
        out = self.norm(out).view(b, f, -1)
        return torch.relu(out + self.residual(x))


class BilinearFusion(nn.Module):
    """FinalMLP's aggregation: w_x x + w_y y + sum over heads of x_h^T W_h y_h."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            heads = 1
        self.heads, self.head_dim = heads, dim // heads
        self.wx, self.wy = nn.Linear(dim, 1), nn.Linear(dim, 1, bias=False)
        self.w = nn.Parameter(torch.empty(heads, self.head_dim, self.head_dim))
        nn.init.xavier_normal_(self.w)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hx, hy = x.view(len(x), self.heads, -1), y.view(len(y), self.heads, -1)
        bilinear = torch.einsum("bhi,hij,bhj->b", hx, self.w, hy).unsqueeze(1)
        return self.wx(x) + self.wy(y) + bilinear


class FeatureGate(nn.Module):
    """2 * sigmoid(MLP(context)) over the flattened embeddings; context is one field's embedding."""

    def __init__(self, field: int | None, dim: int, out_dim: int, hidden: list[int]):
        super().__init__()
        self.field = field
        self.bias = nn.Parameter(torch.zeros(1, dim)) if field is None else None
        self.mlp = MLP(dim, hidden, out_dim=out_dim)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        ctx = self.bias.expand(len(fields), -1) if self.field is None else fields[:, self.field]
        return 2 * torch.sigmoid(self.mlp(ctx)) * fields.flatten(1)


class ReSort(nn.Module):
    def __init__(self, layout: FeatureLayout, cfg: RankModelConfig, n_tasks: int = 1):
        super().__init__()
        f, d = layout.n_fields, cfg.embed_dim
        self.embed = FieldEmbedding(layout, d)
        self.gates = nn.ModuleList(
            FeatureGate(ctx, d, f * d, cfg.gate_dims) for ctx in (layout.user_field, layout.item_field)
        )
        dims = [d] + [cfg.retention_dim] * cfg.retention_layers
        self.streams = nn.ModuleList(
            nn.Sequential(
                *(
                    MultiScaleRetention(dims[i], dims[i + 1], cfg.retention_heads, f)
                    for i in range(cfg.retention_layers)
                )
            )
            for _ in range(2)
        )
        self.fusion = BilinearFusion(f * cfg.retention_dim, cfg.retention_heads)
        self.n_fields, self.dim = f, d

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        e = self.embed(cat, dense)
        s1, s2 = (
            stream(gate(e).view(-1, self.n_fields, self.dim)).flatten(1)
            for gate, stream in zip(self.gates, self.streams)
        )
        return self.fusion(s1, s2)
