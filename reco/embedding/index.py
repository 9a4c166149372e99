"""Nearest-neighbour search over unit vectors with faiss (inner product = cosine).

``flat`` is exact and the default for small runs; ``ivf`` (inverted lists), ``ivfpq``
(inverted lists of product-quantised codes: ``pq_m`` bytes a user instead of 4 x dim) and
``hnsw`` (graph) trade a little recall for speed or memory at scale. :func:`recall_at_k`
measures that trade against exact search on the same queries, so a config change shows what
it costs.

IVF and IVF-PQ are built in three parts so that no one process needs every vector:
:func:`train_index` fits the quantizers on a sample and returns an empty trained index,
:func:`add_shard` encodes one slice of the vectors with a copy of it, and :func:`merge_shards`
appends the encoded slices, in order, to the trained index. The result is byte for byte the
index that adding every vector to the trained index in one go gives (:func:`build_index`).
ray_jobs/build_index.py runs :func:`add_shard` in Ray tasks; this module never imports Ray.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import faiss
import numpy as np

from reco.embedding.config import IndexConfig
from reco.errors import ConfigError

log = logging.getLogger(__name__)

SHARDED_KINDS = ("ivf", "ivfpq")


def effective_kind(n: int, cfg: IndexConfig) -> str:
    """The kind built for ``n`` vectors: flat below ``index.min_vectors`` (exact and cheap), else ``cfg.kind``."""
    return "flat" if n < cfg.min_vectors else cfg.kind


def nlist_for(n: int, cfg: IndexConfig) -> int:
    """IVF lists: ``index.nlist``, or about 4*sqrt(n) with at least 39 vectors a list (faiss's k-means minimum)."""
    return cfg.nlist or max(1, min(n // 39, int(4 * math.sqrt(n))))


def train_size_for(n: int, cfg: IndexConfig) -> int:
    """Vectors to sample for training: ``index.train_size``, or 64 per list (and per PQ centroid), at most n."""
    if cfg.train_size:
        return min(n, cfg.train_size)
    want = 64 * nlist_for(n, cfg)
    if cfg.kind == "ivfpq":
        want = max(want, 64 * 2**cfg.pq_nbits)
    return min(n, want)


def check_config(cfg: IndexConfig, n: int, dim: int) -> None:
    """Raise a one-line ConfigError, naming the key, for settings these vectors cannot be indexed with."""
    kind = effective_kind(n, cfg)
    if kind not in SHARDED_KINDS:
        return
    nlist, sample = nlist_for(n, cfg), train_size_for(n, cfg)
    if nlist > sample:
        raise ConfigError(
            f"index.nlist: {nlist} lists need at least {nlist} training vectors, the sample has {sample} "
            f"({n} vectors); lower index.nlist or set index.nlist=0"
        )
    if kind == "ivfpq":
        if dim % cfg.pq_m:
            divisors = [m for m in (4, 8, 16, 32, 64) if m <= dim and dim % m == 0]
            raise ConfigError(
                f"index.pq_m: {cfg.pq_m} does not divide the vectors' dimension {dim}; pick a divisor such as "
                f"{', '.join(map(str, divisors)) or '1'}"
            )
        if sample < 2**cfg.pq_nbits:
            raise ConfigError(
                f"index.pq_nbits: {cfg.pq_nbits} bits train {2**cfg.pq_nbits} centroids per sub-quantizer, more than "
                f"the {sample} training vectors; lower index.pq_nbits or use index.kind=ivf"
            )


def sample_positions(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``size`` distinct positions in ``range(n)``, sorted (a reader takes them in one pass)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def new_index(dim: int, n: int, cfg: IndexConfig) -> faiss.Index:
    """An untrained, empty IVF or IVF-PQ index for ``n`` vectors of ``dim`` (inner product)."""
    nlist = nlist_for(n, cfg)
    quantizer = faiss.IndexFlatIP(dim)
    if cfg.kind == "ivfpq":
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, cfg.pq_m, cfg.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the index owns and frees its quantizer
    index.nprobe = min(cfg.nprobe, nlist)
    return index


def train_index(sample: np.ndarray, n: int, cfg: IndexConfig) -> faiss.Index:
    """An empty IVF / IVF-PQ index whose coarse quantizer (and PQ codebooks) are trained on ``sample``.

    ``n`` is the number of vectors the index will hold (it sets the automatic ``nlist``).
    """
    x = np.ascontiguousarray(sample, dtype=np.float32)
    check_config(cfg, n, x.shape[1])
    index = new_index(x.shape[1], n, cfg)
    index.train(x)
    return index


def add_shard(trained: faiss.Index | bytes | np.ndarray, vectors: np.ndarray) -> faiss.Index:
    """A copy of the empty ``trained`` index (or its serialised bytes) holding ``vectors`` encoded, ids from 0."""
    index = from_bytes(trained) if isinstance(trained, bytes | np.ndarray) else faiss.clone_index(trained)
    if index.ntotal:
        raise ValueError("add_shard needs the trained, empty index")
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def merge_shards(trained: faiss.Index, shards: Iterable[tuple[int, faiss.Index]]) -> faiss.Index:
    """Append each ``(start, shard)`` to the empty ``trained`` index in place, shard ids shifted by ``start``.

    Shards must come in order of ``start`` and tile the vectors (0, len(first), ...), so every
    inverted list ends up as in one-go adding; the shards are emptied on the way.
    """
    if trained.ntotal:
        raise ValueError("merge_shards needs the trained, empty index")
    for start, shard in shards:
        if start != trained.ntotal:
            raise ValueError(f"shard starting at {start} does not follow the {trained.ntotal} vectors merged so far")
        trained.merge_from(shard, start)
    return trained


def build_index(vectors: np.ndarray, cfg: IndexConfig, seed: int = 0) -> faiss.Index:
    """The index of ``cfg.kind`` over ``vectors``, built in this process (IVF kinds: train on a sample, add all)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    kind = effective_kind(n, cfg)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind in SHARDED_KINDS:
        index = train_index(x[sample_positions(n, train_size_for(n, cfg), seed)], n, cfg)
    else:
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
    index.add(x)
    return index


def describe(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIVFPQ):
        return f"IVF{index.nlist},PQ{index.pq.M}x{index.pq.nbits} nprobe={index.nprobe}"
    if isinstance(index, faiss.IndexIVF):
        return f"IVF{index.nlist},Flat nprobe={index.nprobe}"
    if isinstance(index, faiss.IndexHNSW):
        return f"HNSW{index.hnsw.nb_neighbors(1)},Flat efSearch={index.hnsw.efSearch}"
    return "Flat (exact)"


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of ``queries`` among ``vectors``, ids shifted by ``offset`` (-1, -inf pad)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    exact = faiss.IndexFlatIP(q.shape[1])
    exact.add(x)
    scores, ids = exact.search(q, k)
    return scores, np.where(ids >= 0, ids + offset, -1)


def merge_top_k(parts: Iterable[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The overall top-k from per-shard top-k lists (scores, global ids), best first."""
    parts = list(parts)
    scores = np.concatenate([s for s, _ in parts], axis=1)
    ids = np.concatenate([i for _, i in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def recall_of(truth: np.ndarray, got: np.ndarray) -> float:
    """Share of the true neighbour ids (rows of ``truth``, -1 ignored) found in the same rows of ``got``."""
    hits = total = 0
    for t, g in zip(truth.tolist(), got.tolist()):
        want = {i for i in t if i >= 0}
        hits += len(want & set(g))
        total += len(want)
    return hits / max(total, 1)


def recall_at_k(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k neighbours the index returns for the same queries."""
    k = min(k, len(vectors))
    _, truth = exact_top_k(vectors, queries, k)
    _, got = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return recall_of(truth, got)


def to_bytes(index: faiss.Index) -> bytes:
    return faiss.serialize_index(index).tobytes()


def from_bytes(data: bytes | np.ndarray) -> faiss.Index:
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    return faiss.deserialize_index(buf)
