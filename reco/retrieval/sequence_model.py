"""The sequence user tower, PinnerFormer-style (Pancha et al., KDD 2022).

A small causal transformer encoder reads a user's latest ``max_len`` engagements (topic
embedding + position + time-gap bucket) and maps each position to a unit user vector; topics
have their own unit output vectors. Trained with the dense all-action objective (each of many
positions predicts a random engagement from the window that follows it; see
reco.retrieval.sequence_windows) or next-item as the comparison, with a sampled softmax over
in-batch and random negatives and the log-Q correction. Because it learns the longer-term
future, a user's vector can be computed once a day by a batch job (ray_jobs/train_sequence.py,
which re-embeds only users with new engagements) and served as a plain vector.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reco.retrieval.data import UserSequences
from reco.retrieval.sequence_windows import GAP_BUCKETS, inference_windows


class SequenceTower(nn.Module):
    def __init__(self, n_topics: int, dim: int, max_len: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.n_topics, self.dim, self.max_len, self.heads = n_topics, dim, max_len, heads
        self.arch = {
            "n_topics": n_topics,
            "dim": dim,
            "max_len": max_len,
            "layers": layers,
            "heads": heads,
            "dropout": dropout,
        }
        self.tokens = nn.Embedding(n_topics + 1, dim, padding_idx=n_topics)
        self.positions = nn.Embedding(max_len, dim)
        self.gaps = nn.Embedding(GAP_BUCKETS, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.items = nn.Embedding(n_topics, dim)
        for emb in (self.tokens, self.positions, self.gaps, self.items):
            nn.init.normal_(emb.weight, std=0.05)

    @property
    def pad_id(self) -> int:
        return self.n_topics

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B * heads, N, N), True where attention is blocked: the future, and padding (but never oneself)."""
        n, dev = tokens.shape[1], tokens.device
        future = torch.triu(torch.ones(n, n, dtype=torch.bool, device=dev), diagonal=1)
        blocked = future[None] | (tokens == self.pad_id)[:, None, :]
        blocked &= ~torch.eye(n, dtype=torch.bool, device=dev)[None]
        return blocked.repeat_interleave(self.heads, dim=0)

    def encode(self, tokens: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) unit user vectors, one per position, each seeing only itself and earlier ones."""
        x = self.tokens(tokens) + self.positions.weight[None, -tokens.shape[1] :] + self.gaps(gaps)
        h = self.encoder(x, mask=self.attention_mask(tokens))
        return F.normalize(self.head(self.norm(h)), dim=-1)

    def forward(
        self,
        tokens: torch.Tensor,
        gaps: torch.Tensor,
        anchor_window: torch.Tensor,
        anchor_col: torch.Tensor,
        item_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors at the anchors (A, dim) and unit vectors of ``item_ids`` (one forward, as DDP needs)."""
        users = self.encode(tokens, gaps)[anchor_window, anchor_col]
        return users, F.normalize(self.items(item_ids), dim=-1)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        return F.normalize(self.items.weight, dim=-1).cpu().numpy()

    @torch.no_grad()
    def user_vectors(self, users: UserSequences, batch_size: int = 1024) -> np.ndarray:
        """(n, dim) the output at each user's latest engagement; zeros for a user with none."""
        was_training = self.training
        self.eval()
        out = np.zeros((len(users), self.dim), np.float32)
        for s in range(0, len(users), batch_size):
            part = users.take(np.arange(s, min(len(users), s + batch_size)))
            w = inference_windows(part, self.max_len, self.pad_id)
            dev = self.items.weight.device
            vecs = (
                self.encode(torch.from_numpy(w.tokens).to(dev), torch.from_numpy(w.gaps).to(dev))[:, -1].cpu().numpy()
            )
            out[s : s + len(part)] = np.where((part.lengths > 0)[:, None], vecs, 0.0)
        self.train(was_training)
        return out
