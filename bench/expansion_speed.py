"""Audience expansion's scoring speed: every user for every list, the Ray Data job beside one process.

    python -m bench.expansion --data synthetic --users 1000000 --lists 100

Random unit vectors (generated directly, not trained, said so in the output) are scored for
every list with the Ray Data job's code (actor pool, per-batch top-K, group-by merge) beside a
single-process numpy scorer in the same run, with peak memory; the single-process scorer is
also timed at smaller sizes, and a cost model seconds = users x (a + b x lists) is fitted.
Beside it, on the same thread, the floor: the same arithmetic as a plain float32 numpy loop
(``float32_floor``), in microseconds per user-list pair, and the ratio of the two.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pyarrow as pa

from bench.peak_memory import PeakRSS
from reco.expansion.fixed_point import USER_BITS

CONFIG = "configs/local.yaml"  # the embedded default's expansion settings


def _random_setup(n_users: int, n_lists: int, dim: int = 64, seed: int = 0):
    """Random unit vectors (users) and lists of random users with sizes spread 10 to 2,000."""
    from reco.expansion.seed_lists import SeedList

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_users, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sizes = np.round(np.geomspace(10, min(2000, n_users // 10), n_lists)).astype(int)
    lists = [
        SeedList(f"list-{i}", np.sort(rng.choice(n_users, size=s, replace=False)), int(s), 0, 0)
        for i, s in enumerate(sizes)
    ]
    return np.arange(n_users, dtype=np.int64), x, lists


def _fit_random(cfg, ids, x, lists):
    from reco.expansion.list_models import VectorLookup, fit_list_models
    from reco.expansion.region_density import Hyperplanes, region_counts

    lsh = Hyperplanes.for_users(x.shape[1], len(ids), cfg.expansion.density, x.mean(axis=0))
    users = sum(region_counts(lsh.codes(x[s : s + 65536]), lsh.n_regions) for s in range(0, len(x), 65536))
    pool = np.sort(np.random.default_rng(1).choice(len(ids), size=min(len(ids), 20_000), replace=False))
    return fit_list_models(lists, VectorLookup.of(ids, x), pool, lsh, users, cfg.expansion)


def _single_process(models, ids, x, k: int, depth: int, batch: int) -> pa.Table:
    """The single-process numpy scorer: the same per-batch scoring, one thread, merged at the end."""
    from reco.expansion.scoring import ListScorer, audiences_from_candidates

    scorer = ListScorer(models)
    parts = [scorer.candidates(ids[s : s + batch], x[s : s + batch], depth) for s in range(0, len(ids), batch)]
    return audiences_from_candidates(pa.concat_tables(parts), models.shares, k, depth)


def float32_floor(models, ids: np.ndarray, x: np.ndarray, depth: int, batch: int, chunk: int = 2048) -> dict:
    """The floor: the scorer's exhaustive arithmetic as a plain float32 numpy loop, timed on this thread.

    Per ``chunk`` of each batch: the region codes (one float32 product with the planes, the bits
    packed), every list's density as the mean of its m region scores gathered from dense float32
    tables (stored region-major, (m x 2^n, L): one gather per user and repetition fetches that
    region's score in every list), the 64-32-1 classifiers as one float32 product over the stacked
    first layers and one einsum; then per batch each list's top-``depth`` by each method
    (argpartition), and at the end each list's global top from the batches' candidates. No fixed
    point, no sparse tables, no seeds removed, no tie order: only the arithmetic, as fast as plain
    numpy does it. Returns seconds, in all and for the region codes alone.
    """
    lsh = models.lsh
    normals = lsh.normals.astype(np.float32)  # integers below 2^21: exact in float32
    offsets = (lsh.offsets * 2.0**-USER_BITS).astype(np.float32)  # the user grid's scale taken out
    tables = np.ascontiguousarray(models.dense_tables().astype(np.float32).reshape(len(models.tables), -1).T)
    w1 = np.concatenate([c.w1 for c in models.classifiers], axis=1).astype(np.float32)
    b1 = np.concatenate([c.b1 for c in models.classifiers]).astype(np.float32)
    w2 = np.stack([c.w2 for c in models.classifiers]).astype(np.float32)
    b2 = np.array([c.b2 for c in models.classifiers], np.float32)
    n_lists, hidden = w2.shape
    m = lsh.repetitions
    base = np.arange(m, dtype=np.int64)[:, None] * lsh.n_regions
    cand: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(2 * n_lists)]
    codes_s = 0.0
    t0 = time.perf_counter()
    for s in range(0, len(ids), batch):
        ib = ids[s : s + batch]
        dens = np.empty((len(ib), n_lists), np.float32)
        clf = np.empty((n_lists, len(ib)), np.float32)
        for c in range(0, len(ib), chunk):
            xb = x[s + c : s + min(c + chunk, len(ib))]
            t = time.perf_counter()
            bits = (xb @ normals > offsets).reshape(len(xb), m, lsh.n_planes)
            packed = np.zeros((len(xb), m, 4), np.uint8)
            packed[:, :, : (lsh.n_planes + 7) // 8] = np.packbits(bits, axis=2, bitorder="little")
            flat = packed.view("<u4")[:, :, 0].T + base  # (m, B): repetition-major
            codes_s += time.perf_counter() - t
            acc = np.take(tables, flat[0], axis=0)
            for rep in range(1, m):
                acc += np.take(tables, flat[rep], axis=0)
            dens[c : c + len(xb)] = acc / np.float32(m)
            h = np.maximum(xb @ w1 + b1, np.float32(0.0))
            clf[:, c : c + len(xb)] = np.einsum("blh,lh->lb", h.reshape(len(xb), n_lists, hidden), w2) + b2[:, None]
        for method, scores in enumerate((np.ascontiguousarray(dens.T), clf)):
            for lst in range(n_lists):
                row = scores[lst]
                top = np.argpartition(row, len(row) - depth)[len(row) - depth :] if len(row) > depth else slice(None)
                cand[method * n_lists + lst].append((ib[top], row[top]))
    for parts in cand:
        uid, sc = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        uid[np.argsort(-sc, kind="stable")[:depth]]
    return {"seconds": time.perf_counter() - t0, "codes_seconds": codes_s}


def speed(n_users: int, n_lists: int, overrides: list[str]) -> dict:
    from threadpoolctl import threadpool_limits

    from ray_jobs import expand
    from ray_jobs.common import init_ray
    from reco.config import load_config
    from reco.data.vectors import vector_table
    from reco.expansion.list_models import ARTIFACT
    from reco.run_dir import RunDir

    tmp = tempfile.mkdtemp(prefix="expansion-speed-")
    cfg = load_config(CONFIG, [f"run_dir={tmp}", *overrides])
    from reco.expansion.blend import top_depth

    k, batch = cfg.expansion.audience_size, cfg.expansion.job.batch_size
    depth = top_depth(cfg.expansion.blend, k)
    print(
        f"Speed: {n_users:,} random 64-d unit vectors (generated directly, not trained), {n_lists} random seed lists, "
        f"K={k}, batch {batch:,}; machine has {os.cpu_count()} cores"
    )
    ids, x, lists = _random_setup(n_users, n_lists)
    with threadpool_limits(1), PeakRSS() as mem_fit:
        t = time.perf_counter()
        models = _fit_random(cfg, ids, x, lists)
        fit_s = time.perf_counter() - t
    print(
        f"  fit {n_lists} lists (density tables + classifiers, {models.lsh.n_planes} planes x "
        f"{models.lsh.repetitions}): {fit_s:.1f}s"
    )
    rows = []
    with threadpool_limits(1):
        for frac_u, frac_l in ((0.25, 0.25), (0.5, 0.25), (0.25, 0.5), (0.25, 1.0), (0.5, 1.0)):
            n, nl = int(n_users * frac_u), max(1, int(n_lists * frac_l))
            sub = _fit_subset(models, nl)
            t = time.perf_counter()
            _single_process(sub, ids[:n], x[:n], k, depth, batch)
            rows.append((n, nl, time.perf_counter() - t))
        with PeakRSS() as mem_single:
            t = time.perf_counter()
            single = _single_process(models, ids, x, k, depth, batch)
            single_s = time.perf_counter() - t
        floor = float32_floor(models, ids, x, depth, batch)
    rows.append((n_users, n_lists, single_s))
    pairs = n_users * n_lists
    ratio = single_s / floor["seconds"]
    run = RunDir(tmp)
    run.write_bytes(ARTIFACT, models.to_bytes(), step="bench")
    init_ray(cfg.ray)
    import ray

    blocks = [vector_table("user_id", ids[s : s + 32768], x[s : s + 32768]) for s in range(0, n_users, 32768)]
    ds = ray.data.from_arrow(blocks).materialize()
    cores = int(ray.cluster_resources().get("CPU", 1))
    with PeakRSS() as mem_ray:
        t = time.perf_counter()
        merged = expand.score(cfg, run, ds, models.shares)
        ray_s = time.perf_counter() - t
    order = np.lexsort((merged.column("rank").to_numpy(), merged.column("list_pos").to_numpy()))
    same = merged.take(pa.array(order)).equals(single)
    print(f"\n  {'scorer':<44}{'seconds':>9}{'users/s/core':>15}{'user-lists/s/core':>19}{'peak RSS MB':>13}")
    for name, sec, c, mem in (
        ("single-process numpy (1 thread)", single_s, 1, mem_single.peak_mb),
        (f"Ray Data job ({cfg.expansion.job.actors} actor(s), {cores} CPUs)", ray_s, cores, mem_ray.peak_mb),
    ):
        print(f"  {name:<44}{sec:>9.1f}{n_users / sec / c:>15,.0f}{n_users * n_lists / sec / c:>19,.0f}{mem:>13,.0f}")
    print(
        "  (Ray's peak RSS is the whole local Ray instance: driver, raylet, workers; the fit peaked at "
        f"{mem_fit.peak_mb:,.0f} MB)"
    )
    print(f"  audiences identical (Ray Data vs single process): {same}")
    print("\n  one core, microseconds per user-list pair (everything: codes, density, classifiers, top-K, merge):")
    print(f"    project scorer (exact fixed point, sparse density, ties by id)  {single_s / pairs * 1e6:6.3f}")
    print(
        f"    float32 floor (plain numpy, dense tables)                       {floor['seconds'] / pairs * 1e6:6.3f}"
        f"   (its region codes: {floor['codes_seconds'] / n_users * 1e6:.1f} us per user)"
    )
    print(f"    ratio                                                           {ratio:6.2f}x")
    growth = cost_model(rows)
    print("\n  single-process cost against users x lists, fitted as seconds = users x (a + b x lists):")
    print(
        f"  a = {growth['per_user_us']:.1f} us per user (the part that does not depend on the lists), "
        f"b = {growth['per_user_list_us']:.2f} us per user-list"
    )
    print(f"  {'users':>10}{'lists':>7}{'seconds':>9}{'fitted':>9}{'error':>8}")
    for (n, nl, sec), fit in zip(rows, growth["fitted_seconds"]):
        print(f"  {n:>10,}{nl:>7}{sec:>9.2f}{fit:>9.2f}{(sec - fit) / fit:>+8.1%}")
    return {
        "growth": growth,
        "data": "synthetic-random",
        "users": n_users,
        "lists": n_lists,
        "k": k,
        "single_users_per_s_per_core": round(n_users / single_s),
        "ray_users_per_s_per_core": round(n_users / ray_s / cores),
        "ray_cores": cores,
        "peak_rss_mb": {"single": round(mem_single.peak_mb), "ray": round(mem_ray.peak_mb)},
        "identical": bool(same),
        "us_per_pair": {
            "single": single_s / pairs * 1e6,
            "floor": floor["seconds"] / pairs * 1e6,
            "floor_codes_per_user": floor["codes_seconds"] / n_users * 1e6,
            "ratio": ratio,
        },
    }


def cost_model(rows: list[tuple[int, int, float]]) -> dict:
    """Least squares of seconds per user on (1, lists): the scorer's cost is linear in users x
    lists plus a per-user part that does not depend on the lists; the fit's errors say how well."""
    users = np.array([r[0] for r in rows], float)
    lists = np.array([r[1] for r in rows], float)
    secs = np.array([r[2] for r in rows], float)
    (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(lists), lists], axis=1), secs / users, rcond=None)
    fitted = users * (a + b * lists)
    return {
        "per_user_us": float(a * 1e6),
        "per_user_list_us": float(b * 1e6),
        "fitted_seconds": [round(float(f), 2) for f in fitted],
        "max_abs_error": float(np.max(np.abs(secs - fitted) / fitted)),
        "points": [{"users": int(n), "lists": int(nl), "seconds": round(float(s), 2)} for n, nl, s in rows],
    }


def _fit_subset(models, n_lists: int):
    """The first n lists of a fitted bundle (for the scaling rows, without refitting)."""
    import dataclasses

    keep = models.seed_list < n_lists
    return dataclasses.replace(
        models,
        list_ids=models.list_ids[:n_lists],
        n_seeds=models.n_seeds[:n_lists],
        shares=models.shares[:n_lists],
        tables=models.tables[:n_lists],
        classifiers=models.classifiers[:n_lists],
        seed_list=models.seed_list[keep],
        seed_user=models.seed_user[keep],
    )
