"""Every seed list's fitted representation, in one bundle the scoring actors load once.

Per list: its sparse region-density table (the regions holding seeds), its smoothing and blend
share, its affinity-classifier weights and its seeds (never returned). Shared by all lists: the
hyperplanes and the number of users in every region. The bundle is a NumPy ``.npz`` (no
pickle), written to the run directory as ``models/expansion.npz``.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reco import artifacts
from reco.errors import ArtifactError
from reco.expansion.affinity_classifier import (
    MLPWeights,
    StackedClassifiers,
    background_size,
    fit_classifier,
    sample_background,
)
from reco.expansion.blend import density_share
from reco.expansion.config import ExpansionConfig
from reco.expansion.region_density import Hyperplanes, SparseTable, dense_from_sparse, smoothing, sparse_table
from reco.expansion.seed_lists import SeedList
from reco.expansion.user_vectors import VectorSets

ARTIFACT = artifacts.EXPANSION_MODELS


def list_seed(list_id: str) -> int:
    """A per-list random seed that does not depend on the order of the lists."""
    return zlib.crc32(list_id.encode())


@dataclass(frozen=True)
class VectorLookup:
    """The vectors of a subset of users (seeds and background), looked up by dense id.

    Calling it returns the real vectors of the users asked for, one row per vector (a user with
    several interests gives several rows: the classifier learns from each of them).
    """

    ids: np.ndarray  # sorted
    sets: VectorSets

    @classmethod
    def of(cls, ids: np.ndarray, vectors: VectorSets | np.ndarray) -> VectorLookup:
        order = np.argsort(ids)
        return cls(np.asarray(ids)[order], VectorSets.of(vectors).take(order))

    @property
    def dim(self) -> int:
        return self.sets.dim

    def __call__(self, query: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, query)
        if len(query) and (pos.max() >= len(self.ids) or not np.array_equal(self.ids[pos], query)):
            raise ArtifactError("a user vector needed for a seed list is missing from the gathered users")
        return self.sets.valid(pos)


@dataclass(frozen=True)
class ListModels:
    list_ids: list[str]
    n_seeds: np.ndarray  # (L,)
    shares: np.ndarray  # (L,) density share of the blend
    lsh: Hyperplanes
    region_users: np.ndarray  # (m, 2^n)
    min_region_users: int
    tables: list[SparseTable]
    classifiers: list[MLPWeights]
    seed_list: np.ndarray  # (S,) list position of each seed pair
    seed_user: np.ndarray  # (S,) dense user id

    def dense_tables(self) -> np.ndarray:
        return np.stack([dense_from_sparse(t, self.region_users, self.min_region_users) for t in self.tables])

    def stacked(self) -> StackedClassifiers:
        return StackedClassifiers.from_weights(self.classifiers)

    def table_rows(self) -> dict[str, np.ndarray]:
        """The sparse {region: score} tables as columns (seed_list_id, repetition, region, seeds, users, score)."""
        n = [len(t.region) for t in self.tables]
        return {
            "seed_list_id": np.repeat(np.asarray(self.list_ids, dtype=object), n),
            **{
                c: np.concatenate([getattr(t, c) for t in self.tables])
                for c in ("repetition", "region", "seeds", "users", "score")
            },
        }

    def to_bytes(self) -> bytes:
        rows = self.table_rows()
        arrays = {
            "list_ids": np.asarray(self.list_ids, dtype=str),
            "n_seeds": self.n_seeds,
            "shares": self.shares,
            "region_users": self.region_users,
            "min_region_users": np.array(self.min_region_users),
            "tbl_list": np.repeat(np.arange(len(self.tables)), [len(t.region) for t in self.tables]),
            **{f"tbl_{c}": rows[c] for c in ("repetition", "region", "seeds", "users", "score")},
            "alpha": np.array([t.alpha for t in self.tables]),
            "beta": np.array([t.beta for t in self.tables]),
            "w1": np.stack([c.w1 for c in self.classifiers]),
            "b1": np.stack([c.b1 for c in self.classifiers]),
            "w2": np.stack([c.w2 for c in self.classifiers]),
            "b2": np.array([c.b2 for c in self.classifiers]),
            "fit": np.array([[c.steps, c.best_step, c.val_loss] for c in self.classifiers]),
            "seed_list": self.seed_list,
            "seed_user": self.seed_user,
            **self.lsh.to_arrays(),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ListModels:
        a = dict(np.load(io.BytesIO(data), allow_pickle=False))
        n_lists = len(a["list_ids"])
        tables, clfs = [], []
        for i in range(n_lists):
            sel = a["tbl_list"] == i
            tables.append(
                SparseTable(
                    a["tbl_repetition"][sel],
                    a["tbl_region"][sel],
                    a["tbl_seeds"][sel],
                    a["tbl_users"][sel],
                    a["tbl_score"][sel],
                    float(a["alpha"][i]),
                    float(a["beta"][i]),
                )
            )
            steps, best, loss = a["fit"][i]
            clfs.append(
                MLPWeights(a["w1"][i], a["b1"][i], a["w2"][i], float(a["b2"][i]), int(steps), int(best), float(loss))
            )
        return cls(
            [str(x) for x in a["list_ids"]],
            a["n_seeds"],
            a["shares"],
            Hyperplanes.from_arrays(a),
            a["region_users"],
            int(a["min_region_users"]),
            tables,
            clfs,
            a["seed_list"],
            a["seed_user"],
        )


def fit_list_models(
    lists: list[SeedList],
    vectors_of: Callable[[np.ndarray], np.ndarray],
    background_pool: np.ndarray,
    lsh: Hyperplanes,
    region_users: np.ndarray,
    cfg: ExpansionConfig,
) -> ListModels:
    """Fit density tables and classifiers for every list (seeds and pool looked up by ``vectors_of``).

    The smoothing prior is the seeds' share of all vectors (``region_users`` counts every vector
    once per repetition); with one vector per user, the seeds' share of users.
    """
    tables, clfs = [], []
    n_vectors = int(np.asarray(region_users)[0].sum())
    for s in lists:
        seed_vecs = vectors_of(s.users)
        alpha, beta = smoothing(cfg.density, len(seed_vecs), n_vectors)
        tables.append(sparse_table(lsh.codes(seed_vecs), region_users, alpha, beta, cfg.density.min_region_users))
        rng = np.random.default_rng([cfg.classifier.seed, list_seed(s.list_id)])
        bg = sample_background(background_pool, s.users, background_size(len(s.users), cfg.classifier), rng)
        clfs.append(fit_classifier(seed_vecs, vectors_of(bg), cfg.classifier, seed=list_seed(s.list_id)))
    n_seeds = np.array([len(s.users) for s in lists], dtype=np.int64)
    return ListModels(
        list_ids=[s.list_id for s in lists],
        n_seeds=n_seeds,
        shares=np.array([density_share(cfg.blend, cfg.buckets, int(n)) for n in n_seeds]),
        lsh=lsh,
        region_users=np.asarray(region_users, np.int64),
        min_region_users=cfg.density.min_region_users,
        tables=tables,
        classifiers=clfs,
        seed_list=np.repeat(np.arange(len(lists)), n_seeds).astype(np.int64),
        seed_user=np.concatenate([s.users for s in lists]).astype(np.int64) if lists else np.empty(0, np.int64),
    )
