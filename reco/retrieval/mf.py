"""Matrix factorisation as a retriever: the ranking stack's MF (reco.rank.models.mf), not a second one.

The ranking stack's ``MatrixFactorization`` (logit = <p_u, q_i> + b_u + b_i + b), reached
through ``reco.rank.pair_mf``, is trained on binary cross-entropy: every engagement a positive,
``negatives`` uniform topics per positive. Retrieval is a maximum inner product search over its
factor tables (``MfFactors``). A user who never trained (Last.fm's held-out
users) gets a vector folded in: ``p_u`` fitted on their topics with the item side fixed.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reco import artifacts
from reco.rank.features import Rows
from reco.rank.pair_mf import MfFactors, bce_step, make_pair_mf, pair_rows
from reco.retrieval.data import TrainingData, UserSequences, ragged_rows
from reco.retrieval.training import fit_epochs, validation_recall
from reco.retrieval.vector import UserState, VectorRetriever
from reco.run_dir import RunDir

MODEL = "model.pt"


def training_rows(seqs: UserSequences, n_topics: int, negatives: int, rng: np.random.Generator) -> Rows:
    """Positives (label 1) and ``negatives`` uniform topics per positive (label 0), as pair rows."""
    users = seqs.user_ids[ragged_rows(seqs.offsets)]
    neg_users = np.repeat(users, negatives)
    items = np.r_[seqs.topics, rng.integers(0, n_topics, len(neg_users))]
    labels = np.r_[np.ones(len(users)), np.zeros(len(neg_users))]
    return pair_rows(np.r_[users, neg_users], items, labels)


def fold_in(items: np.ndarray, users: UserSequences, negatives: int, steps: int, lr: float, seed: int) -> np.ndarray:
    """``[p_u, 1]`` for users who never trained: p_u fitted by BCE on their topics, items fixed."""
    q, b = torch.from_numpy(items[:, :-1]), torch.from_numpy(items[:, -1])
    rows = torch.from_numpy(ragged_rows(users.offsets))
    pos = torch.from_numpy(users.topics)
    p = torch.zeros(len(users), q.shape[1], requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        neg = torch.randint(0, len(q), (len(pos), negatives), generator=gen)
        pos_logit = (p[rows] * q[pos]).sum(1) + b[pos]
        neg_logit = (p[rows][:, None, :] * q[neg]).sum(2) + b[neg]
        loss = F.softplus(-pos_logit).sum() + F.softplus(neg_logit).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach(), torch.ones(len(users), 1)], dim=1).numpy()


class MfRetriever(VectorRetriever):
    name = "mf"
    job = "ray_jobs.train_mf"
    unit_vectors = False

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.model: torch.nn.Module | None = None
        self.known = np.empty(0, np.int64)
        self.n_users = 0
        self.train_meta: dict[str, Any] = {}

    def use_model(self, model: torch.nn.Module, known: np.ndarray, n_users: int) -> MfRetriever:
        """A model trained elsewhere (ray_jobs.train_mf); ``known``: the users it trained on."""
        self.model, self.known, self.n_users = model.eval(), np.unique(np.asarray(known, np.int64)), int(n_users)
        self.set_items(MfFactors(model).items())
        return self

    def fit(self, data: TrainingData) -> MfRetriever:
        c = self.cfg.mf
        torch.manual_seed(c.seed)
        self.n_users = data.n_users
        self.model = make_pair_mf(data.n_users, data.n_topics, c.dim)
        self.known = np.unique(data.sequences.user_ids)
        opt = torch.optim.Adam(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)

        def run_epoch(epoch: int) -> dict:
            rng = np.random.default_rng([c.seed, epoch])
            rows = training_rows(data.sequences, data.n_topics, c.negatives, rng)
            losses = [bce_step(self.model, opt, batch) * len(batch) for batch in rows.batches(c.batch_size, rng)]
            return {"loss": sum(losses) / max(len(rows), 1)}

        def validate() -> float:
            self.set_items(MfFactors(self.model).items())
            return validation_recall(self.embed_users(data.validation.inputs)[1], self.item_vectors, data.validation)

        state = fit_epochs(
            self.model, run_epoch, validate if data.validation is not None else None, c.epochs, c.patience, "mf"
        )
        self.train_meta = {"best_epoch": state.best_epoch, "epochs_run": state.epoch}
        self.set_items(MfFactors(self.model).items())
        self.index_users(data.sequences)
        return self

    def embed_users(self, users: UserSequences) -> UserState:
        c = self.cfg.mf
        vecs = np.zeros((len(users), self.item_vectors.shape[1]), np.float32)
        known = np.isin(users.user_ids, self.known)
        vecs[known] = MfFactors(self.model).users(users.user_ids[known])
        if (~known).any():
            vecs[~known] = fold_in(
                self.item_vectors, users.take(np.flatnonzero(~known)), c.negatives, c.fold_in_steps, 0.05, c.seed
            )
        return np.arange(len(users) + 1, dtype=np.int64), vecs, np.ones(len(users), np.float32)

    def _meta(self) -> dict[str, Any]:
        return {**self.train_meta, "n_users": int(self.n_users)}

    def _save_model(self, run: RunDir, step: str) -> None:
        buf = io.BytesIO()
        torch.save(
            {"state_dict": self.model.state_dict(), "known": torch.from_numpy(self.known), "dim": self.cfg.mf.dim}, buf
        )
        run.write_bytes(artifacts.retriever(self.name, MODEL), buf.getvalue(), step=step)

    def _load_model(self, run: RunDir, meta: dict[str, Any]) -> None:
        blob = torch.load(
            io.BytesIO(run.read_bytes(artifacts.retriever(self.name, MODEL))), map_location="cpu", weights_only=True
        )
        self.n_users = int(meta["n_users"])
        self.model = make_pair_mf(self.n_users, self.n_topics, int(blob["dim"]))
        self.model.load_state_dict(blob["state_dict"])
        self.known = blob["known"].numpy()
