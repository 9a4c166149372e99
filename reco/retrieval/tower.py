"""What the trained-tower retrievers (sequence tower, two-tower) share: one torch model that
gives the item vectors and embeds users, fitted, saved with the run and loaded back.

A subclass names its model class and says how to fit it (``_fit_model``) and how it turns
users into vectors (``_user_vectors``); saving, loading and indexing are the same for both.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from torch import nn

from reco import artifacts
from reco.errors import ArtifactError
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.vector import UserState, VectorRetriever, single_vector_state
from reco.run_dir import RunDir

MODEL = "model.pt"


def model_bytes(model: nn.Module, meta: dict[str, Any]) -> bytes:
    """The model's constructor arguments (``model.arch``), weights and training meta, torch-saved."""
    buf = io.BytesIO()
    torch.save({"arch": model.arch, "state_dict": model.state_dict(), "meta": meta}, buf)
    return buf.getvalue()


def model_from_bytes(data: bytes, model_class: type[nn.Module]) -> tuple[nn.Module, dict[str, Any]]:
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = model_class(**blob["arch"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, blob["meta"]


class TowerRetriever(VectorRetriever):
    model_class: type[nn.Module]

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.model: nn.Module | None = None
        self.train_meta: dict[str, Any] = {}

    def _fit_model(self, data: TrainingData) -> tuple[nn.Module, Any]:
        """(model, training state with best_epoch, epoch and history)."""
        raise NotImplementedError

    def _user_vectors(self, users: UserSequences) -> np.ndarray:
        raise NotImplementedError

    def fit(self, data: TrainingData) -> TowerRetriever:
        model, state = self._fit_model(data)
        self.train_meta = {"best_epoch": state.best_epoch, "epochs_run": state.epoch, "history": state.history}
        return self.use_model(model, data.sequences)

    def use_model(self, model: nn.Module, users: UserSequences | None = None) -> TowerRetriever:
        self.model = model.eval()
        self.set_items(model.item_vectors())
        if users is not None:
            self.index_users(users)
        return self

    def embed_users(self, users: UserSequences) -> UserState:
        if self.model is None:
            raise ArtifactError(f"{self.name} has no model: fit it or load it from a run directory")
        return single_vector_state(self._user_vectors(users))

    def _meta(self) -> dict[str, Any]:
        return {k: v for k, v in self.train_meta.items() if k != "history"}

    def _save_model(self, run: RunDir, step: str) -> None:
        run.write_bytes(artifacts.retriever(self.name, MODEL), model_bytes(self.model, self.train_meta), step=step)

    def _load_model(self, run: RunDir, meta: dict[str, Any]) -> None:
        self.model, self.train_meta = model_from_bytes(
            run.read_bytes(artifacts.retriever(self.name, MODEL)), self.model_class
        )
