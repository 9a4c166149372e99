"""build_index: faiss indexes over the user and topic embeddings, with their id maps.

``index/users.faiss`` (exact inner product by default; IVF, IVF-PQ or HNSW from ``index.kind``)
and ``index/topics.faiss`` (always exact: topics are few), each beside an ``*_ids.parquet``
mapping index positions to dense ids. Reports recall@10 of the user index against exact search
on ``index.recall_queries`` sampled users.

IVF and IVF-PQ are built without the driver ever holding the user vectors: Ray tasks read a
sample (the training set and the recall queries), the driver trains the quantizers on it, then
one Ray task per ``index.shard_rows`` users reads its slice, encodes it with the trained, empty
index and computes the queries' exact top-10 in its slice; the driver merges the encoded
shards in order (the same index as adding every vector at once) and the top-10 lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray

from ray_jobs.common import StepTimer, job_main
from reco import artifacts
from reco.config import Config
from reco.data.vectors import vectors_of
from reco.embedding.config import IndexConfig
from reco.embedding.index import (
    SHARDED_KINDS,
    add_shard,
    build_index,
    check_config,
    describe,
    effective_kind,
    exact_top_k,
    from_bytes,
    merge_shards,
    merge_top_k,
    recall_of,
    sample_positions,
    to_bytes,
    train_index,
    train_size_for,
)
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.build_index")
STEP = "build_index"
K = 10


@dataclass(frozen=True)
class VectorSource:
    """Parquet files of an ``embedding`` vector column, in index order, and each file's rows.

    Small and picklable: Ray tasks get it and read their own rows, never the driver.
    """

    fs: pafs.FileSystem
    files: tuple[str, ...]
    rows: tuple[int, ...]
    dim: int

    @classmethod
    def of(cls, fs: pafs.FileSystem, files: list[str], column: str = "embedding") -> VectorSource:
        metas = [pq.ParquetFile(f, filesystem=fs).metadata for f in files]
        dim = pq.ParquetFile(files[0], filesystem=fs).schema_arrow.field(column).type.list_size
        return cls(fs, tuple(files), tuple(m.num_rows for m in metas), dim)

    @property
    def n(self) -> int:
        return sum(self.rows)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a float32 matrix, reading only the row groups that hold them."""
        parts, first = [], 0
        for path, rows in zip(self.files, self.rows):
            if first < stop and first + rows > start:
                f = pq.ParquetFile(path, filesystem=self.fs)
                group_first = first
                for g in range(f.metadata.num_row_groups):
                    g_rows = f.metadata.row_group(g).num_rows
                    lo, hi = max(start, group_first), min(stop, group_first + g_rows)
                    if lo < hi:
                        mat = vectors_of(f.read_row_group(g, columns=["embedding"]))
                        parts.append(mat[lo - group_first : hi - group_first])
                    group_first += g_rows
            first += rows
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


@ray.remote(num_cpus=1)
def _take_rows(source: VectorSource, start: int, stop: int, positions: np.ndarray) -> np.ndarray:
    """The rows at ``positions`` (global, all in ``[start, stop)``) of one shard."""
    return source.read(start, stop)[positions - start]


@ray.remote(num_cpus=1)
def _encode_shard(
    source: VectorSource, start: int, stop: int, trained: np.ndarray, queries: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One shard: its vectors encoded by the trained, empty index (serialised), and the queries' exact top-k in it."""
    x = source.read(start, stop)
    shard = faiss.serialize_index(add_shard(trained, x))
    if queries is None:
        return shard, None, None
    scores, ids = exact_top_k(x, queries, min(K, len(x)), offset=start)
    return shard, scores, ids


def _bounds(n: int, shard_rows: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + shard_rows)) for s in range(0, n, shard_rows)]


def build_sharded(
    source: VectorSource, cfg: IndexConfig, query_positions: np.ndarray | None = None, seed: int = 0
) -> tuple[faiss.Index, np.ndarray | None, np.ndarray | None]:
    """An IVF / IVF-PQ index over ``source``, trained on a sample and added in shards by Ray tasks.

    Returns the index and, when ``query_positions`` are given, those vectors and their exact
    top-k ids over every vector (from the same tasks), for the recall check.
    """
    n, dim = source.n, source.dim
    check_config(cfg, n, dim)
    bounds = _bounds(n, cfg.shard_rows)
    train_pos = sample_positions(n, train_size_for(n, cfg), seed)
    qpos = np.sort(query_positions) if query_positions is not None else np.zeros(0, np.int64)
    wanted = np.union1d(train_pos, qpos)
    src = ray.put(source)
    t = time.perf_counter()
    refs = []
    for lo, hi in bounds:
        a, b = np.searchsorted(wanted, [lo, hi])
        if a < b:
            refs.append(_take_rows.remote(src, lo, hi, wanted[a:b]))
    sample = np.concatenate(ray.get(refs))
    train = sample[np.searchsorted(wanted, train_pos)]
    queries = sample[np.searchsorted(wanted, qpos)] if query_positions is not None else None
    log.info("read %d training and %d query vectors in %.1fs", len(train), len(qpos), time.perf_counter() - t)
    t = time.perf_counter()
    trained = train_index(train, n, cfg)
    del sample, train
    log.info("trained %s on %d vectors in %.1fs", describe(trained), train_pos.size, time.perf_counter() - t)
    t = time.perf_counter()
    trained_ref = ray.put(faiss.serialize_index(trained))
    q_ref = ray.put(queries) if queries is not None else None
    refs = [_encode_shard.remote(src, lo, hi, trained_ref, q_ref) for lo, hi in bounds]
    tops: list[tuple[np.ndarray, np.ndarray]] = []

    def shards():
        for (lo, _), ref in zip(bounds, refs):  # in order: the merged lists keep one-go order
            data, scores, ids = ray.get(ref)
            if scores is not None:
                tops.append((scores, ids))
            yield lo, from_bytes(data)

    index = merge_shards(trained, shards())
    log.info("added %d vectors in %d Ray tasks and merged in %.1fs", n, len(bounds), time.perf_counter() - t)
    truth = merge_top_k(tops, min(K, n))[1] if tops else None
    return index, queries, truth


def _write(run: RunDir, name: str, index, ids: np.ndarray, id_column: str, meta: dict) -> int:
    """Write the index and its id map; returns the index's size in bytes."""
    run.write_table(
        artifacts.index_ids(name),
        pa.table({"position": np.arange(len(ids), dtype=np.int64), id_column: ids}),
        step=STEP,
    )
    data = to_bytes(index)
    run.write_bytes(artifacts.index(name), data, step=STEP, rows=int(index.ntotal), meta=meta)
    return len(data)


def _user_index(cfg: Config, run: RunDir, ids: np.ndarray) -> tuple[faiss.Index, float, float, int]:
    """(index, recall@10 vs exact, ms per query of the approximate search, queries)."""
    n = len(ids)
    rng = np.random.default_rng(0)
    qpos = rng.choice(n, size=min(cfg.index.recall_queries, n), replace=False)
    kind = effective_kind(n, cfg.index)
    with StepTimer(f"user index ({kind}, {n} vectors)") as t_build:
        if kind in SHARDED_KINDS:
            source = VectorSource.of(run.fs, run.files(artifacts.USER_EMBEDDINGS))
            index, q, truth = build_sharded(source, cfg.index, query_positions=qpos)
        else:
            vecs = vectors_of(run.read_table(artifacts.USER_EMBEDDINGS))
            index = build_index(vecs, cfg.index)
            q = vecs[qpos]
            truth = exact_top_k(vecs, q, min(K, n))[1]
            del vecs
    t = time.perf_counter()
    _, got = index.search(np.ascontiguousarray(q, dtype=np.float32), min(K, n))
    query_ms = (time.perf_counter() - t) * 1000 / len(q)
    return index, recall_of(truth, got), query_ms, t_build.seconds


def run(cfg: Config, run: RunDir) -> dict:
    ids = run.read_table(artifacts.USER_EMBEDDINGS, columns=["user_id"]).column("user_id").to_numpy()
    index, recall, query_ms, build_s = _user_index(cfg, run, ids)
    kind = describe(index)
    log.info("user index %s: recall@10 vs exact %.4f, %.3f ms a query", kind, recall, query_ms)
    index_bytes = _write(run, "users", index, ids, "user_id", {"kind": kind, "recall@10": recall})
    del index
    topics = run.read_table(artifacts.TOPIC_EMBEDDINGS)
    topic_index = build_index(vectors_of(topics), IndexConfig(kind="flat"))
    _write(
        run, "topics", topic_index, topics.column("topic_id").to_numpy(), "topic_id", {"kind": describe(topic_index)}
    )
    summary = {
        "step": STEP,
        "users": len(ids),
        "kind": kind,
        "recall@10_vs_exact": recall,
        "build_seconds": build_s,
        "index_bytes": index_bytes,
        "recall_queries": min(cfg.index.recall_queries, len(ids)),
        "ms_per_query": query_ms,
        "topics": topics.num_rows,
    }
    run.write_json(artifacts.metrics("index"), summary, step=STEP)
    return summary


main = job_main(run, __doc__.splitlines()[0], needs_ray=True)

if __name__ == "__main__":
    raise SystemExit(main())
