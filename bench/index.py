"""The user index at scale: exact (flat) beside IVF and IVF-PQ, built as the pipeline builds them.

    python -m bench.index --users 1000000

Builds, over the same user vectors in one run, a flat index (exact: the baseline and the
ground truth) in this process, and IVF and IVF-PQ through ray_jobs/build_index.py's sharded
path (Ray tasks read their slice of the vectors from Parquet, encode it with the index trained
on a sample in the driver, and the driver merges the shards), on a local Ray instance with 2
CPUs. For each it prints build seconds, the index's size in bytes (its serialised form, which
is what it holds in memory), ms per query (a batch of ``--queries`` searched at once, top-10)
and recall@10 against exact search on those queries.

The vectors are a planted mixture unless ``--run`` names a run directory: ``--communities``
unit centroids, each user a random mix of 1 to 3 of them plus a shared direction and Gaussian
noise, unit-normalised. That gives users neighbourhoods (trained embeddings have them; uniform
noise has none, and would make every approximate index look worse than it is). ``--run``
indexes that run's exported user embeddings instead. The output says which.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.index")
K = 10


def planted_users(n: int, dim: int, communities: int, noise: float, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: a mix of 1-3 of ``communities`` centroids, a shared direction and noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((communities, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shared = rng.standard_normal(dim).astype(np.float32)
    shared *= 0.5 / np.linalg.norm(shared)
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, 100_000):
        m = min(n, lo + 100_000) - lo
        k = rng.integers(1, 4, m)
        x = np.tile(shared, (m, 1))
        for j in range(3):
            w = (rng.random(m, dtype=np.float32) * (j < k)).astype(np.float32)
            x += w[:, None] * centres[rng.integers(0, communities, m)]
        x += (noise / np.sqrt(dim)) * rng.standard_normal((m, dim), dtype=np.float32)
        out[lo : lo + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def run_users(run_dir: str) -> np.ndarray:
    from reco import artifacts
    from reco.data.vectors import vectors_of
    from reco.run_dir import RunDir

    return vectors_of(RunDir(run_dir).read_table(artifacts.USER_EMBEDDINGS))


def write_parts(x: np.ndarray, folder: Path, rows_per_file: int) -> list[str]:
    """The vectors as Parquet files of an ``embedding`` column (as export_embeddings writes them)."""
    import pyarrow.parquet as pq

    from reco.data.vectors import vector_table

    files = []
    for i, lo in enumerate(range(0, len(x), rows_per_file)):
        path = str(folder / f"part-{i:05d}.parquet")
        hi = min(len(x), lo + rows_per_file)
        pq.write_table(vector_table("user_id", np.arange(lo, hi), x[lo:hi]), path, row_group_size=65_536)
        files.append(path)
    return files


def search(index, q: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-10 ids of ``q`` and ms per query (one batch)."""
    t = time.perf_counter()
    _, ids = index.search(q, K)
    return ids, (time.perf_counter() - t) * 1000 / len(q)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--communities", type=int, default=1000, help="planted mixture: community centroids")
    p.add_argument("--noise", type=float, default=0.3, help="planted mixture: Gaussian noise norm")
    p.add_argument("--run", default=None, help="index this run directory's user embeddings instead")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--nprobes", default="16,64", help="nprobe values searched (the first is the config default)")
    p.add_argument("--pq-m", default="16,32", help="IVF-PQ bytes per user (pq_m) to build")
    p.add_argument("--shard-rows", type=int, default=250_000, help="vectors per Ray task")
    p.add_argument("--threads", type=int, default=2, help="faiss threads in this process (training, search)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import faiss
    import pyarrow.fs as pafs
    import ray

    from ray_jobs.build_index import VectorSource, build_sharded
    from reco.embedding.config import IndexConfig
    from reco.embedding.index import describe, recall_of, to_bytes

    faiss.omp_set_num_threads(args.threads)
    t = time.perf_counter()
    if args.run:
        x = run_users(args.run)
        what = f"the exported user embeddings of {args.run} ({len(x):,} x {x.shape[1]})"
    else:
        x = planted_users(args.users, args.dim, args.communities, args.noise)
        what = (
            f"a planted mixture, not trained embeddings: {len(x):,} x {args.dim} unit vectors, each 1-3 of "
            f"{args.communities:,} community centroids + a shared direction + noise {args.noise}"
        )
    log.info("vectors ready in %.1fs: %s", time.perf_counter() - t, what)
    n = len(x)
    qpos = np.sort(np.random.default_rng(1).choice(n, size=min(args.queries, n), replace=False))
    q = np.ascontiguousarray(x[qpos])
    nprobes = [int(v) for v in args.nprobes.split(",")]
    rows = []

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    build_s = time.perf_counter() - t
    truth, ms = search(flat, q)
    rows.append(("flat (exact)", describe(flat), build_s, len(to_bytes(flat)), ms, 1.0))
    del flat

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1024 * 2**20, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_parts(x, Path(tmp), args.shard_rows)
        source = VectorSource.of(pafs.LocalFileSystem(), files)
        del x  # from here on only the Ray tasks read the vectors, from Parquet
        configs = [("ivf", IndexConfig(kind="ivf", shard_rows=args.shard_rows))] + [
            (f"ivfpq m={m}", IndexConfig(kind="ivfpq", pq_m=int(m), shard_rows=args.shard_rows))
            for m in args.pq_m.split(",")
        ]
        for name, cfg in configs:
            t = time.perf_counter()
            index, _, _ = build_sharded(source, cfg)
            build_s = time.perf_counter() - t
            size = len(to_bytes(index))
            for nprobe in nprobes:
                index.nprobe = nprobe
                got, ms = search(index, q)
                rows.append((f"{name} (sharded, Ray)", describe(index), build_s, size, ms, recall_of(truth, got)))
            del index
    ray.shutdown()

    print(f"\nuser index over {n:,} users; vectors: {what}")
    print(
        f"{len(q):,} queries (users of the index) searched in one batch, top-{K}; faiss threads here: {args.threads}; "
        f"sharded builds: Ray tasks of {args.shard_rows:,} vectors on 2 CPUs\n"
    )
    print("| index | faiss | build s | index bytes | bytes/user | ms/query | recall@10 vs exact |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, desc, build_s, size, ms, recall in rows:
        print(f"| {name} | {desc} | {build_s:.1f} | {size:,} | {size / n:.1f} | {ms:.3f} | {recall:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
