"""Layers the ranking models share: field embeddings, MLPs, a DCNv2 cross network, an
AutoInt self-attention block and the factorisation machine's pairwise term.

Every model reads encoded :class:`reco.rank.features.Rows` as ``(cat, dense)`` tensors and
returns logits ``(B, tasks)``. :class:`FieldEmbedding` turns the inputs into one vector per
field: id fields look up one shared table (multi-valued fields average their non-padding
tokens) and each dense value scales a learned vector, as AutoInt does, so every interaction
layer sees a uniform ``(B, fields, dim)`` tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from reco.rank.features import FeatureLayout


def first_slot(layout: FeatureLayout, field: int) -> int:
    """The column of Rows.cat where id field ``field`` starts."""
    return sum(layout.slots[:field])


class FieldEmbedding(nn.Module):
    """(cat (B, slots), dense (B, D)) -> (B, fields, dim): id fields, then one field per dense value."""

    def __init__(self, layout: FeatureLayout, dim: int, init_std: float = 0.01):
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(max(1, sum(layout.sizes)), dim)
        nn.init.normal_(self.table.weight, std=init_std) if init_std > 0 else nn.init.zeros_(self.table.weight)
        starts = (
            torch.tensor([0, *layout.sizes[:-1]], dtype=torch.long).cumsum(0)
            if layout.sizes
            else torch.zeros(0, dtype=torch.long)
        )
        slot_field = torch.repeat_interleave(
            torch.arange(len(layout.slots)), torch.tensor(layout.slots, dtype=torch.long)
        )
        self.register_buffer("slot_offset", starts[slot_field], persistent=False)
        # (slots, id fields) 0/1 assignment; multi slots pool only their non-padding ids
        self.register_buffer("assign", nn.functional.one_hot(slot_field, len(layout.slots)).float(), persistent=False)
        self.register_buffer("is_multi", torch.tensor(layout.slots, dtype=torch.long)[slot_field] > 1, persistent=False)
        # no parameter without dense fields: DDP requires every parameter to get a gradient
        self.dense = (
            nn.Parameter(
                torch.randn(layout.n_dense, dim) * init_std if init_std > 0 else torch.zeros(layout.n_dense, dim)
            )
            if layout.n_dense
            else None
        )
        self.has_multi = bool(any(s > 1 for s in layout.slots))

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        parts = []
        if cat.shape[1]:
            emb = self.table(cat + self.slot_offset)
            if self.has_multi:
                mask = torch.where(self.is_multi, (cat > 0).float(), torch.ones_like(cat, dtype=torch.float32))
                summed = torch.einsum("bsd,bs,sf->bfd", emb, mask, self.assign)
                parts.append(summed / (mask @ self.assign).clamp(min=1.0).unsqueeze(-1))
            else:
                parts.append(emb)
        if dense.shape[1]:
            parts.append(dense.unsqueeze(-1) * self.dense)
        return torch.cat(parts, dim=1)


class IdEmbedding(nn.Module):
    """One id field's own table (users or items of MF and the NCF family)."""

    def __init__(self, layout: FeatureLayout, field: int | None, dim: int, init_std: float = 0.01):
        super().__init__()
        if field is None:
            raise ValueError("this model needs a user and an item id field")
        self.col = first_slot(layout, field)
        self.table = nn.Embedding(layout.sizes[field], dim)
        nn.init.normal_(self.table.weight, std=init_std) if init_std > 0 else nn.init.zeros_(self.table.weight)

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        return self.table(cat[:, self.col])


class MLP(nn.Module):
    """Linear -> ReLU -> dropout per hidden layer, then an optional linear output."""

    def __init__(self, in_dim: int, dims: list[int], dropout: float = 0.0, out_dim: int | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        for d in dims:
            layers += [nn.Linear(in_dim, d), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_dim = d
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
            in_dim = out_dim
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossNetwork(nn.Module):
    """DCNv2 cross layers: x_{l+1} = x0 * (W_l x_l + b_l) + x_l, W full rank or U_l V_l^T."""

    def __init__(self, dim: int, layers: int, rank: int = 0):
        super().__init__()
        if rank:
            self.maps = nn.ModuleList(
                nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim)) for _ in range(layers)
            )
        else:
            self.maps = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for m in self.maps:
            x = x0 * m(x) + x
        return x


class SelfAttention(nn.Module):
    """AutoInt's interacting layer: multi-head self-attention over fields, residual, ReLU."""

    def __init__(self, in_dim: int, out_dim: int, heads: int):
        super().__init__()
        if out_dim % heads:
            raise ValueError(f"attention_dim {out_dim} is not divisible by attention_heads {heads}")
        self.heads, self.head_dim = heads, out_dim // heads
        self.qkv = nn.Linear(in_dim, 3 * out_dim, bias=False)
        self.residual = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _ = x.shape
        q, k, v = self.qkv(x).view(b, f, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return torch.relu(out.transpose(1, 2).reshape(b, f, -1) + self.residual(x))


def fm_pairwise(fields: torch.Tensor) -> torch.Tensor:
    """The factorisation machine's sum of pairwise dot products, (B, F, d) -> (B, 1)."""
    square_of_sum = fields.sum(dim=1).pow(2)
    sum_of_square = fields.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=1, keepdim=True)
