"""Implicit-feedback matrix factorisation: weighted ALS (Hu, Koren & Volinsky 2008), numpy and scipy.

A user-topic matrix of engagements ``w`` becomes preferences ``p = 1`` where a user engaged and
``0`` elsewhere, with confidence ``c = 1 + alpha * g(w)`` (g: 1, w or log1p(w)). ALS minimises
``sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (|x_u|^2 + |y_i|^2)`` by fixing one side and solving
the other. Each row's system ``(Y'Y + Y' (C_u - I) Y + reg I) x_u = Y' C_u p_u`` is solved by a
few conjugate-gradient steps warm-started from the previous iterate (Takacs, Pilaszy & Tikk
2011, the solver the ``implicit`` package uses), for every row at once: one CG step is a gather
and a sparse product over the non-zeros, so an iteration costs O(nnz x factors), no Python loop
per user and no (factors x factors) matrix per row.

The ``implicit`` package (0.7.3) installs on this Python and fits the same objective; this
module is used instead because its result is a function of the data and the seed alone (no
OpenMP thread pool, which would also compete with Ray's workers for the cores given to a task),
it needs no compiled dependency, and it fits the data sets here in seconds (docs/embeddings.md).

The expansion reads the user factors as one unit vector per user (``artifacts.ALS_USER_VECTORS``),
the same table shape as the pooled StarSpace embedding, so every expansion method runs on them
unchanged (reco.expansion.user_vectors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from reco import artifacts
from reco.data.histories import flat_lists
from reco.data.vectors import vector_table
from reco.embedding.config import ALSConfig

log = logging.getLogger(__name__)

STEP = "fit_als"


def interaction_matrix(
    user_ids: np.ndarray, topics: pa.ChunkedArray | pa.Array, weights: pa.ChunkedArray | pa.Array, n_topics: int
) -> sp.csr_matrix:
    """(users, topics) CSR of summed engagement weights, row i being ``user_ids[i]``'s history lists."""
    t_flat, lengths = flat_lists(topics)
    w_flat = flat_lists(weights)[0].astype(np.float32)
    rows = np.repeat(np.arange(len(user_ids)), lengths)
    m = sp.csr_matrix((w_flat, (rows, t_flat.astype(np.int64))), shape=(len(user_ids), n_topics), dtype=np.float32)
    m.sum_duplicates()
    return m


def run_matrix(run, columns: tuple[str, str] = ("topics", "weights")) -> tuple[np.ndarray, sp.csr_matrix]:
    """(dense user ids, their input-history matrix) from a run's histories: what a user engaged with
    in training, never the targets the held-out evaluation scores."""
    hist = run.read_table(artifacts.HISTORIES, columns=["user_id", *columns])
    hist = hist.sort_by("user_id")
    n_topics = int(run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id"]).column(0).to_numpy().max()) + 1
    ids = hist.column("user_id").to_numpy()
    return ids, interaction_matrix(ids, hist.column(columns[0]), hist.column(columns[1]), n_topics)


def confidence(matrix: sp.csr_matrix, cfg: ALSConfig) -> sp.csr_matrix:
    """``c - 1 = alpha * g(w)`` on the non-zeros (g by ``cfg.confidence``); a zero weight still counts as engaged."""
    m = matrix.tocsr().astype(np.float32, copy=True)
    w = np.maximum(m.data, 0)
    g = {"binary": np.ones_like(w), "linear": w, "log": np.log1p(w)}[cfg.confidence]
    m.data = (cfg.alpha * g).astype(np.float32)
    return m


@dataclass(frozen=True)
class ALSFit:
    users: np.ndarray  # (n_users, factors) float32
    topics: np.ndarray  # (n_topics, factors) float32
    seconds: float
    iterations: int


def _cg_side(x: np.ndarray, y: np.ndarray, cm1: sp.csr_matrix, reg: float, steps: int) -> np.ndarray:
    """Every row of ``x`` moved ``steps`` CG steps towards its weighted least-squares solution given ``y``.

    ``cm1`` is (rows of x, rows of y): c - 1 on the engaged pairs (p = 1 there, 0 elsewhere).
    """
    rows = np.repeat(np.arange(cm1.shape[0]), np.diff(cm1.indptr))
    cols = cm1.indices
    gram = (y.T @ y).astype(np.float64) + reg * np.eye(y.shape[1])
    gram = gram.astype(np.float32)
    coo = sp.csr_matrix((cm1.data.copy(), cols, cm1.indptr), shape=cm1.shape)

    def a_times(v: np.ndarray) -> np.ndarray:
        dots = np.einsum("kd,kd->k", v[rows], y[cols])
        coo.data = cm1.data * dots
        return v @ gram + coo @ y

    # b = Y' C_u p_u = sum over engaged topics of c_ui y_i = (cm1 + 1 on the engaged pairs) @ y
    ones = sp.csr_matrix((np.ones_like(cm1.data) + cm1.data, cols, cm1.indptr), shape=cm1.shape)
    r = ones @ y - a_times(x)
    p = r.copy()
    rs = np.einsum("nd,nd->n", r, r)
    for _ in range(steps):
        ap = a_times(p)
        denom = np.einsum("nd,nd->n", p, ap)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 1e-20)
        x = x + step[:, None] * p
        r = r - step[:, None] * ap
        rs_new = np.einsum("nd,nd->n", r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)
        p = r + beta[:, None] * p
        rs = rs_new
    return x.astype(np.float32)


def fit_als(matrix: sp.csr_matrix, cfg: ALSConfig) -> ALSFit:
    """User and topic factors of the weighted ALS objective (module docstring)."""
    t0 = time.perf_counter()
    cm1 = confidence(matrix, cfg)
    cm1_t = cm1.T.tocsr()
    rng = np.random.default_rng(cfg.seed)
    users = (rng.standard_normal((cm1.shape[0], cfg.factors)) * 0.01).astype(np.float32)
    topics = (rng.standard_normal((cm1.shape[1], cfg.factors)) * 0.01).astype(np.float32)
    for _ in range(cfg.iterations):
        users = _cg_side(users, topics, cm1, cfg.regularization, cfg.cg_steps)
        topics = _cg_side(topics, users, cm1_t, cfg.regularization, cfg.cg_steps)
    return ALSFit(users, topics, time.perf_counter() - t0, cfg.iterations)


def loss(matrix: sp.csr_matrix, fit: ALSFit, cfg: ALSConfig) -> float:
    """The weighted ALS objective of a fit (dense over every (user, topic) pair: small matrices only, for tests)."""
    c = 1.0 + confidence(matrix, cfg).toarray()
    p = (matrix.toarray() != 0) | (c > 1)
    pred = fit.users.astype(np.float64) @ fit.topics.T
    reg = cfg.regularization * (np.square(fit.users).sum() + np.square(fit.topics).sum())
    return float((c * np.square(p - pred)).sum() + reg)


def fit_run(run, cfg: ALSConfig) -> dict:
    """Fit ALS on a run's training histories and write the users' unit vectors (``artifacts.ALS_USER_VECTORS``).

    The artifact's meta holds the config it was fitted with; :func:`is_current` compares it.
    """
    ids, matrix = run_matrix(run)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fit = fit_als(matrix, cfg)
    peak = tracemalloc.get_traced_memory()[1] - base
    if not tracing:
        tracemalloc.stop()
    norm = np.linalg.norm(fit.users, axis=1, keepdims=True)
    unit = np.where(norm > 0, fit.users / np.maximum(norm, 1e-12), 0.0)
    summary = {
        "users": int(len(ids)),
        "topics": int(matrix.shape[1]),
        "nnz": int(matrix.nnz),
        "factors": cfg.factors,
        "iterations": fit.iterations,
        "fit_seconds": round(fit.seconds, 2),
        "fit_peak_mb": round(peak / 2**20, 1),  # numpy's allocations during the fit (tracemalloc)
        "config": cfg.model_dump(),
        "histories": histories_fingerprint(run),
    }
    run.write_table(artifacts.ALS_USER_VECTORS, vector_table("user_id", ids, unit), step=STEP, meta=summary)
    log.info(
        "ALS: %d users x %d topics (%d engagements), %d factors, %d iterations in %.1fs",
        len(ids),
        matrix.shape[1],
        matrix.nnz,
        cfg.factors,
        fit.iterations,
        fit.seconds,
    )
    return summary


def histories_fingerprint(run) -> str:
    """A digest of the run's histories files (their checksums in the manifest): a re-ingest changes it."""
    files = (run.entry(artifacts.HISTORIES) or {}).get("files", {})
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def is_current(run, cfg: ALSConfig) -> bool:
    """The run holds ALS user vectors fitted with this config on its current histories."""
    if not run.has(artifacts.ALS_USER_VECTORS):
        return False
    meta = run.artifact(artifacts.ALS_USER_VECTORS).get("meta", {})
    return meta.get("config") == cfg.model_dump() and meta.get("histories") == histories_fingerprint(run)
