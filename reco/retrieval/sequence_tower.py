"""The sequence tower as a retriever: fitted in-process or by ray_jobs/train_sequence.py, served as plain vectors.

The model is reco.retrieval.sequence_model (PinnerFormer-style); its training,
reco.retrieval.sequence_fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.sequence_fit import fit_sequence_tower
from reco.retrieval.sequence_model import SequenceTower
from reco.retrieval.tower import TowerRetriever


class SequenceTowerRetriever(TowerRetriever):
    name = "sequence_tower"
    job = "ray_jobs.train_sequence"
    model_class = SequenceTower

    def _fit_model(self, data: TrainingData):
        return fit_sequence_tower(data, self.cfg.sequence)

    def _user_vectors(self, users: UserSequences) -> np.ndarray:
        return self.model.user_vectors(users, self.cfg.sequence.embed_batch_size)

    def _meta(self) -> dict[str, Any]:
        return {"objective": self.cfg.sequence.objective, **super()._meta()}
