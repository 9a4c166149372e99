"""Nearest-neighbour search over unit vectors with faiss (inner product = cosine).

``flat`` is exact and the default for small runs; ``ivf`` (inverted lists) and ``hnsw``
(graph) trade a little recall for speed at scale. :func:`recall_at_k` measures that trade
against exact search on the same queries, so a config change shows what it costs.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from reco.embedding.config import IndexConfig


def build_index(vectors: np.ndarray, cfg: IndexConfig, seed: int = 0) -> faiss.Index:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if cfg.kind == "flat" or n < 1000:
        index = faiss.IndexFlatIP(d)
    elif cfg.kind == "ivf":
        nlist = cfg.nlist or max(1, min(n // 39, int(4 * math.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = x[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        index.train(train)
        index.nprobe = min(cfg.nprobe, nlist)
    else:
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
    index.add(x)
    return index


def describe(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIVF):
        return f"IVF{index.nlist},Flat nprobe={index.nprobe}"
    if isinstance(index, faiss.IndexHNSW):
        return f"HNSW{index.hnsw.nb_neighbors(1)},Flat efSearch={index.hnsw.efSearch}"
    return "Flat (exact)"


def recall_at_k(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k neighbours the index returns for the same queries."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(x))
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    _, truth = exact.search(q, k)
    _, got = index.search(q, k)
    hits = sum(len(set(t) & set(g)) for t, g in zip(truth.tolist(), got.tolist()))
    return hits / (len(q) * k)


def to_bytes(index: faiss.Index) -> bytes:
    return faiss.serialize_index(index).tobytes()


def from_bytes(data: bytes) -> faiss.Index:
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
