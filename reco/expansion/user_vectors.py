"""The vectors the expansion methods read per user: one, or several (a retriever's interests).

``expansion.user_vectors`` names the source. ``embedding`` (the default; ``starspace`` is the
same) is the spine's pooled StarSpace vector, one per user (``embeddings/users.parquet``).
``als`` is the implicit-feedback matrix factorisation's user factors (``embeddings/als_users.parquet``,
reco.embedding.als). A retriever name reads that retriever's saved user table
(``retrieval/<name>/users``, written by its batch job): one vector per user for the sequence
tower, two-tower and MF, up to a handful for multi-interest.

``expansion.representations`` lists several of these (plus ``coengagement``, which has no
vectors: reco.expansion.coengagement) for the protocol to score side by side and the ensemble
to blend (reco.expansion.ensemble).

A user is one row of ``m`` padded vectors with a mask, so a batch never splits a user. Every
method works on the vectors themselves (LSH regions count vectors, the classifiers learn from
the seeds' vectors against the background's) and a user scores the **max over its vectors**:
as in PinnerSage, a person is as close to a list as their closest interest, where the mean of
unrelated interests would land near none of them. With one vector per user this is exactly the
single-vector arithmetic.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from reco import artifacts
from reco.errors import ArtifactError, ConfigError, DataError
from reco.retrieval.registry import RETRIEVERS

POOLED = "embedding"
STARSPACE = "starspace"  # the representation's name for the pooled embedding
ALS = "als"
COENGAGEMENT = "coengagement"


@dataclass(frozen=True)
class VectorSets:
    """``vectors`` (n, m, d) unit rows (zeros on padding) and ``mask`` (n, m), true where a vector is."""

    vectors: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        if self.vectors.ndim != 3 or self.mask.shape != self.vectors.shape[:2]:
            raise DataError(f"user vector sets: vectors {self.vectors.shape} and mask {self.mask.shape} do not match")

    @property
    def n(self) -> int:
        return self.vectors.shape[0]

    @property
    def per_user(self) -> int:
        return self.vectors.shape[1]

    @property
    def dim(self) -> int:
        return self.vectors.shape[2]

    @classmethod
    def single(cls, vectors: np.ndarray) -> VectorSets:
        """One vector per user (the pooled embedding)."""
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        return cls(x[:, None, :], np.ones((len(x), 1), dtype=bool))

    @classmethod
    def of(cls, x: VectorSets | np.ndarray) -> VectorSets:
        return x if isinstance(x, VectorSets) else cls.single(x)

    @classmethod
    def from_table(cls, table: pa.Table, limit: int | None = None) -> VectorSets:
        """From an ``embedding`` column (one vector) or a retriever's ``vectors`` / ``vector_weights``
        lists, keeping each user's first ``limit`` vectors (retrievers store the most important first)."""
        if "embedding" in table.column_names:
            col = table.column("embedding").combine_chunks()
            return cls.single(col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size))
        if "vectors" not in table.column_names:
            raise DataError(
                f"a user vector table needs an 'embedding' or a 'vectors' column; it has {table.column_names}"
            )
        vecs = table.column("vectors").combine_chunks()
        counts = vecs.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        inner = vecs.flatten()
        flat = inner.values.to_numpy(zero_copy_only=False).reshape(-1, inner.type.list_size).astype(np.float32)
        weights = table.column("vector_weights").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return cls.ragged(counts, flat, weights > 0, limit)

    @classmethod
    def ragged(
        cls, counts: np.ndarray, flat: np.ndarray, keep: np.ndarray | None = None, limit: int | None = None
    ) -> VectorSets:
        """Padded sets from ragged rows (``counts`` per user, at most ``limit`` each); rows with ``keep`` false are "
        "masked."""
        n, dim = len(counts), flat.shape[1]
        owner = np.repeat(np.arange(n), counts)
        slot = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
        if limit is not None:
            first = slot < limit
            owner, slot, flat = owner[first], slot[first], flat[first]
            keep = None if keep is None else keep[first]
            counts = np.minimum(counts, limit)
        m = max(int(counts.max()) if n else 1, 1)
        vectors = np.zeros((n, m, dim), np.float32)
        mask = np.zeros((n, m), dtype=bool)
        vectors[owner, slot] = unit_rows(flat)
        mask[owner, slot] = True if keep is None else keep
        return cls(vectors, mask)

    def take(self, rows: np.ndarray) -> VectorSets:
        return VectorSets(self.vectors[rows], self.mask[rows])

    def flat(self) -> np.ndarray:
        """(n * m, d): every slot, padding included (scores there are masked by :meth:`best`)."""
        return self.vectors.reshape(-1, self.dim)

    def valid(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(k, d) the real vectors of ``rows`` (all users by default), user by user."""
        part = self if rows is None else self.take(rows)
        return part.vectors[part.mask]

    def count(self) -> int:
        return int(self.mask.sum())

    def best(self, slot_scores: np.ndarray) -> np.ndarray:
        """(..., n * m) scores per slot -> (..., n) each user's max over its vectors (-inf if it has none)."""
        s = np.asarray(slot_scores).reshape(*slot_scores.shape[:-1], self.n, self.per_user)
        if self.per_user == 1:
            return s[..., 0].copy() if self.mask.all() else np.where(self.mask[:, 0], s[..., 0], -np.inf)
        return np.where(self.mask, s, -np.inf).max(axis=-1)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): the fixed-point grid expects unit vectors."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def vector_source(name: str) -> str:
    """A representation's vector source (``starspace`` is the pooled embedding)."""
    return POOLED if name == STARSPACE else name


def representation_name(source: str) -> str:
    """The representation's name of a vector source (the pooled embedding is ``starspace``)."""
    return STARSPACE if source == POOLED else source


def representations(cfg) -> list[str]:
    """The representations an ``expansion`` config scores: ``representations``, else ``user_vectors`` alone."""
    names = cfg.representations or [representation_name(cfg.user_vectors)]
    return list(dict.fromkeys(representation_name(n) for n in names))


def check_representations(names: list[str]) -> None:
    """A one-line ConfigError naming ``expansion.representations`` for an unknown or vector-less name."""
    for name in names:
        if name in (STARSPACE, POOLED, ALS, COENGAGEMENT):
            continue
        try:
            cls = RETRIEVERS.get(name)
        except ConfigError:
            raise ConfigError(
                f"expansion.representations: unknown representation {name!r}; expected {STARSPACE!r}, {ALS!r}, "
                f"{COENGAGEMENT!r} or a vector retriever ({', '.join(RETRIEVERS.names())})"
            ) from None
        if not cls.has_vectors:
            raise ConfigError(f"expansion.representations: retriever {name!r} has no user vectors")


def source_artifact(name: str) -> str:
    """The run-directory artifact holding the user vectors ``expansion.user_vectors`` names."""
    name = vector_source(name)
    if name == POOLED:
        return artifacts.USER_EMBEDDINGS
    return artifacts.ALS_USER_VECTORS if name == ALS else artifacts.retriever(name, "users")


def check_source(name: str, recorded: Collection[str]) -> str:
    """The artifact to read, or a one-line error: an unknown name, a retriever without vectors, one not run yet."""
    name = vector_source(name)
    if name == POOLED:
        return artifacts.USER_EMBEDDINGS
    if name == ALS:
        if artifacts.ALS_USER_VECTORS not in recorded:
            raise ArtifactError(
                f"the ALS representation needs {artifacts.ALS_USER_VECTORS}, which this run does not have: the expand "
                "step fits it (python -m ray_jobs.expand --config <the run's config>)"
            )
        return artifacts.ALS_USER_VECTORS
    if name == COENGAGEMENT:
        raise ConfigError(
            f"expansion.user_vectors={name!r}: co-engagement scores users from shared topics and has no vectors; "
            "list it in expansion.representations"
        )
    try:
        cls = RETRIEVERS.get(name)
    except ConfigError as e:
        raise ConfigError(f"expansion.user_vectors: {e} (or {POOLED!r}, the spine's pooled embedding)") from None
    if not cls.has_vectors:
        raise ConfigError(
            f"expansion.user_vectors={name!r}: that retriever has no user vectors (popularity, item-kNN and Pixie "
            "score "
            f"topics directly); use {POOLED!r} or a vector retriever such as multi_interest"
        )
    rel = source_artifact(name)
    if rel not in recorded:
        how = (
            f"run python -m {cls.job} --config <the run's config> first"
            if cls.job
            else "it is saved by bench.retrieval only"
        )
        raise ArtifactError(f"expansion.user_vectors={name!r} needs {rel}, which this run does not have: {how}")
    return rel


def vector_columns(name: str) -> list[str]:
    name = vector_source(name)
    return ["user_id", "embedding"] if name in (POOLED, ALS) else ["user_id", "vectors", "vector_weights"]


def read_user_vectors(run, name: str) -> pa.Table:
    """The user vector table ``expansion.user_vectors`` names, read whole (user_id and the vector columns)."""
    return run.read_table(check_source(name, run.names()), columns=vector_columns(name))
