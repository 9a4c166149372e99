"""The trained StarSpace model as an artifact, and user vectors from histories (the export step).

The model file holds the state dict and its shape; :class:`UserEmbedder` turns history rows
into unit user vectors (``reco.data.vectors`` tables), as a Ray Data actor UDF.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reco import artifacts
from reco.data.histories import flat_lists
from reco.data.vectors import vector_table
from reco.embedding.starspace import StarSpace, pooling_weights


def save_model(model: StarSpace, meta: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "n_topics": model.n_topics, "dim": model.dim, "meta": meta}, buf)
    return buf.getvalue()


def load_model(data: bytes) -> tuple[StarSpace, dict[str, Any]]:
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = StarSpace(blob["n_topics"], blob["dim"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, blob["meta"]


def history_inputs(batch: pa.Table, weighted: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """EmbeddingBag inputs (ids, offsets, weights) pooling each history row's input topics."""
    flat, lengths = flat_lists(batch.column("topics"))
    offsets = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    w = None
    if weighted:
        wflat, _ = flat_lists(batch.column("weights"))
        w = pooling_weights(wflat, lengths)
    return torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(offsets), w


def embed_histories(model: StarSpace, batch: pa.Table, weighted: bool) -> np.ndarray:
    """(B, dim) unit user vectors from history rows; empty histories give zero vectors."""
    ids, offsets, w = history_inputs(batch, weighted)
    return model.user_vectors(ids, offsets, w).numpy()


class UserEmbedder:
    """Callable over history batches (pyarrow) -> (user_id, embedding); a Ray Data actor UDF.

    It loads the model itself from the run directory (checked against the manifest), so an
    actor restarted on another node needs nothing but the run directory's URI.
    """

    def __init__(self, run_uri: str):
        from reco.run_dir import RunDir

        self.model, meta = load_model(RunDir(run_uri).read_bytes(artifacts.STARSPACE_MODEL))
        self.weighted = bool(meta.get("weighted_pooling", False))
        torch.set_num_threads(1)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return vector_table(
            "user_id", batch.column("user_id").to_numpy(), embed_histories(self.model, batch, self.weighted)
        )
