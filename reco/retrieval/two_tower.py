"""Two-tower as a retriever: fitted in-process or by ray_jobs/train_two_tower.py; item vectors in faiss.

The model is reco.retrieval.two_tower_model (Yi et al., RecSys 2019); its training,
reco.retrieval.two_tower_fit.
"""

from __future__ import annotations

import numpy as np

from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.tower import TowerRetriever
from reco.retrieval.two_tower_fit import fit_two_tower
from reco.retrieval.two_tower_model import TwoTower


class TwoTowerRetriever(TowerRetriever):
    name = "two_tower"
    job = "ray_jobs.train_two_tower"
    model_class = TwoTower

    def _fit_model(self, data: TrainingData):
        return fit_two_tower(data, self.cfg.two_tower)

    def _user_vectors(self, users: UserSequences) -> np.ndarray:
        return self.model.user_vectors(users, self.cfg.two_tower.max_history, self.cfg.two_tower.embed_batch_size)
