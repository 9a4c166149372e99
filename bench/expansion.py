"""Audience expansion: quality on real and synthetic data, and scoring speed at a million users.

Quality (the protocol of reco.expansion.protocol, every method side by side):

    python -m bench.expansion --data ml-100k     # users who rated movie m >= 4 (m removed before training)
    python -m bench.expansion --data lastfm      # listeners of artist a (a removed before training)
    python -m bench.expansion --data synthetic   # planted communities and sampled subsets of them

Each builds its own run directory (runs/expansion-bench-<data>: ingest with the chosen topics
excluded, StarSpace on Ray Train, export, index; ``--reuse`` keeps a finished one whose config
matches), writes the seed lists into it, runs the protocol on a Ray Data actor pool, writes the
table and plot into the run's reports/, prints the table and ends with one JSON line of recall
at the held-out size per bucket and method. ``--stage validation`` scores seeds carved from
the training part instead (for tuning; the test seeds stay unseen). On synthetic it also times
the in-process ``AudienceExpander`` (100-seed lists, 1,000-user audiences).
``--set expansion.user_vectors=multi_interest`` (or another vector retriever) runs that
retriever's batch job on the run first, then the protocol on its user vectors (a user scores the
max over its vectors) instead of the pooled embedding; once both have run (same stage), it
prints each method against itself on the pooled embedding, paired over the same lists and splits.

Speed (random unit vectors, said so in the output):

    python -m bench.expansion --data synthetic --users 1000000 --lists 100

scores every user for every list with the Ray Data job's code (actor pool, per-batch top-K,
group-by merge) beside a single-process numpy scorer in the same run, with peak memory, and
times the single-process scorer at smaller sizes to show cost growing with users x lists.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

from bench.peak_memory import PeakRSS
from reco import artifacts

log = logging.getLogger("bench.expansion")
CONFIGS = {"ml-100k": "configs/ml-100k.yaml", "lastfm": "configs/lastfm.yaml", "synthetic": "configs/local.yaml"}
TOPIC_LISTS = {"ml-100k": ("movie:", 4.0), "lastfm": ("artist:", None)}
SPINE = ("ingest", "train_embeddings", "export_embeddings", "build_index")


def _spine_is_current(run, cfg) -> bool:
    """The run already holds embeddings and an index trained with this data/ingest/embedding config."""
    m = run.manifest()
    if not {artifacts.USER_EMBEDDINGS, artifacts.index("users")} <= set(m.get("artifacts", {})):
        return False
    old = m.get("config", {})
    now = cfg.model_dump()
    return all(old.get(k) == now.get(k) for k in ("data", "ingest", "embedding"))


def _topic_lists(cfg, data: str, per_bucket: int):
    from reco.expansion.list_definitions import topic_audiences
    from reco.data.formats import read_local, resolve_source

    prefix, min_weight = TOPIC_LISTS[data]
    raw = read_local(resolve_source(cfg.data))
    return topic_audiences(raw, cfg.expansion.buckets, per_bucket, cfg.expansion.synthetic_lists.min_size, prefix, min_weight)


def _write_seed_lists(cfg, run, data: str, defs) -> None:
    from ray_jobs.expand import record_truth, seed_list_input
    from reco.expansion.seed_lists import SCHEMA, lists_table, resolve
    from reco.vocab import Vocabulary

    users = Vocabulary.from_table(run.read_table(artifacts.USER_VOCAB), "user_id")
    if defs is None:
        table, source, truth = seed_list_input(cfg, run, users)
    else:
        names = [n for n, m in defs.lists.items() for _ in m]
        table = pa.table({"seed_list_id": names, "user_id": [str(u) for m in defs.lists.values() for u in m]}, schema=SCHEMA)
        source = f"{data}: {TOPIC_LISTS[data][0]}<id> audiences, topics excluded from training"
        truth = None
    resolved = resolve(table, users, cfg.expansion.min_seeds, source)
    record_truth(run, truth)
    log.info("%d seed lists (%d rejected)", len(resolved.accepted), len(resolved.rejected))
    run.write_table(artifacts.SEED_LISTS, lists_table([(s.list_id, s.users) for s in resolved.accepted], users),
                    step="bench.expansion", meta={"source": source})


def _expander_latency(cfg, run, n_requests: int = 200, seeds: int = 100, k: int = 1000) -> dict:
    """p50 / p99 of AudienceExpander.expand (blend) for random 100-seed subsets of the run's lists."""
    from reco.expansion.expander import AudienceExpander


    t = time.perf_counter()
    ex = AudienceExpander(run.uri, cfg.expansion)
    load_s = time.perf_counter() - t
    df = run.read_table(artifacts.SEED_LISTS).to_pandas()
    big = [g["user_id"].to_numpy() for _, g in df.groupby("seed_list_id") if len(g) >= seeds]
    rng = np.random.default_rng(0)
    ms = []
    for i in range(n_requests):
        members = big[i % len(big)]
        t = time.perf_counter()
        ex.expand(rng.choice(members, size=seeds, replace=False).tolist(), k=k, seed=i)
        ms.append((time.perf_counter() - t) * 1000)
    return {"requests": n_requests, "seeds": seeds, "k": k, "users": ex.n_users, "load_s": round(load_s, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def _user_vectors_job(cfg, run) -> None:
    """With ``expansion.user_vectors`` naming a retriever, run its batch job on this run first
    (incremental: users whose history and model are unchanged keep their vectors)."""
    import importlib

    from ray_jobs.common import StepTimer
    from reco.expansion.user_vectors import POOLED
    from reco.retrieval.base import retriever_class

    name = cfg.expansion.user_vectors
    if name == POOLED:
        return
    cls = retriever_class(name)
    if not cls.job:
        raise SystemExit(f"expansion.user_vectors={name!r}: no batch job writes that retriever's user vectors")
    with StepTimer(f"{name} user vectors ({cls.job})"):
        importlib.import_module(cls.job).run(cfg, run)


def _against_pooled(cfg, run) -> dict | None:
    """Keep this protocol's rows per user-vector source; with a retriever's vectors, each method
    against the same method on the pooled embedding, paired over the same lists and splits (the
    splits depend on the list and split number only, so both runs held out the same seeds)."""
    import pandas as pd

    from reco.expansion.protocol import against_best_other
    from reco.expansion.user_vectors import POOLED

    name, stage = cfg.expansion.user_vectors, cfg.expansion.protocol.stage
    rows = run.read_table(artifacts.EXPANSION_ROWS)
    run.write_table(artifacts.metrics_table(f"expansion_rows_{stage}_{name}"), rows, step="bench.expansion")
    pooled_rel = artifacts.metrics_table(f"expansion_rows_{stage}_{POOLED}")
    if name == POOLED or not run.has(pooled_rel):
        return None
    mine, pooled = rows.to_pandas(), run.read_table(pooled_rel).to_pandas()
    out = {}
    for method in ("blend", "density", "classifier"):
        both = pd.concat([mine[mine.method == method].assign(method=name), pooled[pooled.method == method].assign(method=POOLED)])
        out[method] = against_best_other(both, method=name)
    return out


def quality(args) -> dict:
    from ray_jobs import build_index, evaluate, export_embeddings, ingest, train_embeddings
    from ray_jobs.common import StepTimer, init_ray
    from reco.config import load_config
    from reco.expansion.report import comparison_lines, table_lines
    from reco.run_dir import RunDir

    overrides = [f"run_dir={args.run_dir or f'runs/expansion-bench-{args.data}'}",
                 f"expansion.protocol.stage={args.stage}", *args.overrides]
    cfg = load_config(CONFIGS[args.data], overrides)
    defs = None
    if args.data in TOPIC_LISTS:
        defs = _topic_lists(cfg, args.data, args.per_bucket)
        cfg.ingest.exclude_topics = sorted(set(cfg.ingest.exclude_topics) | set(defs.exclude_topics))
    else:
        cfg.expansion.synthetic_lists.per_bucket = args.per_bucket
    run = RunDir(cfg.run_dir)
    init_ray(cfg.ray)
    steps = {"ingest": ingest.run, "train_embeddings": train_embeddings.run, "export_embeddings": export_embeddings.run, "build_index": build_index.run}
    if args.reuse and _spine_is_current(run, cfg):
        log.info("reusing the embeddings and index in %s (same data, ingest and embedding config)", run.uri)
    else:
        for name in SPINE:
            with StepTimer(name):
                steps[name](cfg, run)
    _write_seed_lists(cfg, run, args.data, defs)
    _user_vectors_job(cfg, run)
    with StepTimer("expansion protocol") as t:
        result = evaluate.expansion_evaluation(cfg, run)
    print(f"\nAudience expansion on {args.data} ({result['meta']['lists']} lists, {cfg.expansion.protocol.splits} splits, "
          f"stage {args.stage}, user vectors {cfg.expansion.user_vectors}, {t.seconds:.0f}s); report: {run.path('reports/expansion.md')}\n")
    print("\n".join(table_lines(result["buckets"], markdown=False)))
    print("\nBlend against the best other method, recall at |H|, paired over lists:")
    print("\n".join(f"  {x}" for x in comparison_lines(result["blend_vs_best"])))
    out = {"data": args.data, "user_vectors": cfg.expansion.user_vectors, "recall_at_holdout": result["recall_at_holdout"],
           "blend_vs_best": result["blend_vs_best"]}
    if (versus := _against_pooled(cfg, run)) is not None:
        print(f"\n{cfg.expansion.user_vectors} user vectors against the pooled embedding, recall at |H|, paired over lists:")
        for method, by_bucket in versus.items():
            for bucket, v in by_bucket.items():
                print(f"  {method:<10} {bucket:<7} {v['diff']:+.4f} ± {v['paired_se']:.4f} (z {v['z']:+.2f}): {v['verdict']}")
        out["vs_pooled"] = versus
    if args.data == "synthetic" and args.stage == "test":
        lat = _expander_latency(cfg, run)
        print(f"AudienceExpander (in-process, blend): {lat['requests']} requests of {lat['seeds']} seeds, k={lat['k']}, "
              f"{lat['users']:,} users: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms (load {lat['load_s']} s)")
        out["expander_latency_ms"] = {"p50": lat["p50_ms"], "p99": lat["p99_ms"]}
    return out


def _random_setup(n_users: int, n_lists: int, dim: int = 64, seed: int = 0):
    """Random unit vectors (users) and lists of random users with sizes spread 10 to 2,000."""
    from reco.expansion.seed_lists import SeedList

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_users, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sizes = np.round(np.geomspace(10, min(2000, n_users // 10), n_lists)).astype(int)
    lists = [SeedList(f"list-{i}", np.sort(rng.choice(n_users, size=s, replace=False)), int(s), 0, 0) for i, s in enumerate(sizes)]
    return np.arange(n_users, dtype=np.int64), x, lists


def _fit_random(cfg, ids, x, lists):
    from reco.expansion.list_models import VectorLookup, fit_list_models
    from reco.expansion.region_density import Hyperplanes, region_counts

    lsh = Hyperplanes.for_users(x.shape[1], len(ids), cfg.expansion.density, x.mean(axis=0))
    users = sum(region_counts(lsh.codes(x[s:s + 65536]), lsh.n_regions) for s in range(0, len(x), 65536))
    pool = np.sort(np.random.default_rng(1).choice(len(ids), size=min(len(ids), 20_000), replace=False))
    return fit_list_models(lists, VectorLookup.of(ids, x), pool, lsh, users, cfg.expansion)


def _single_process(models, ids, x, k: int, depth: int, batch: int) -> pa.Table:
    """The single-process numpy scorer: the same per-batch scoring, one thread, merged at the end."""
    from reco.expansion.scoring import ListScorer, audiences_from_candidates

    scorer = ListScorer(models)
    parts = [scorer.candidates(ids[s:s + batch], x[s:s + batch], depth) for s in range(0, len(ids), batch)]
    return audiences_from_candidates(pa.concat_tables(parts), models.shares, k, depth)


def speed(n_users: int, n_lists: int, overrides: list[str]) -> dict:
    from threadpoolctl import threadpool_limits

    from ray_jobs import expand
    from ray_jobs.common import init_ray
    from reco.config import load_config
    from reco.data.vectors import vector_table
    from reco.expansion.list_models import ARTIFACT
    from reco.run_dir import RunDir

    tmp = tempfile.mkdtemp(prefix="expansion-speed-")
    cfg = load_config(CONFIGS["synthetic"], [f"run_dir={tmp}", *overrides])
    from reco.expansion.blend import top_depth

    k, batch = cfg.expansion.audience_size, cfg.expansion.job.batch_size
    depth = top_depth(cfg.expansion.blend, k)
    print(f"Speed: {n_users:,} random 64-d unit vectors (generated directly, not trained), {n_lists} random seed lists, "
          f"K={k}, batch {batch:,}; machine has {os.cpu_count()} cores")
    ids, x, lists = _random_setup(n_users, n_lists)
    with threadpool_limits(1), PeakRSS() as mem_fit:
        t = time.perf_counter()
        models = _fit_random(cfg, ids, x, lists)
        fit_s = time.perf_counter() - t
    print(f"  fit {n_lists} lists (density tables + classifiers, {models.lsh.n_planes} planes x {models.lsh.repetitions}): {fit_s:.1f}s")
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
    rows.append((n_users, n_lists, single_s))
    run = RunDir(tmp)
    run.write_bytes(ARTIFACT, models.to_bytes(), step="bench")
    init_ray(cfg.ray)
    import ray

    blocks = [vector_table("user_id", ids[s:s + 32768], x[s:s + 32768]) for s in range(0, n_users, 32768)]
    ds = ray.data.from_arrow(blocks).materialize()
    cores = int(ray.cluster_resources().get("CPU", 1))
    with PeakRSS() as mem_ray:
        t = time.perf_counter()
        merged = expand.score(cfg, run, ds, models.shares)
        ray_s = time.perf_counter() - t
    order = np.lexsort((merged.column("rank").to_numpy(), merged.column("list_pos").to_numpy()))
    same = merged.take(pa.array(order)).equals(single)
    print(f"\n  {'scorer':<44}{'seconds':>9}{'users/s/core':>15}{'user-lists/s/core':>19}{'peak RSS MB':>13}")
    for name, sec, c, mem in ((f"single-process numpy (1 thread)", single_s, 1, mem_single.peak_mb),
                              (f"Ray Data job ({cfg.expansion.job.actors} actor(s), {cores} CPUs)", ray_s, cores, mem_ray.peak_mb)):
        print(f"  {name:<44}{sec:>9.1f}{n_users / sec / c:>15,.0f}{n_users * n_lists / sec / c:>19,.0f}{mem:>13,.0f}")
    print(f"  (Ray's peak RSS is the whole local Ray instance: driver, raylet, workers; the fit peaked at {mem_fit.peak_mb:,.0f} MB)")
    print(f"  audiences identical (Ray Data vs single process): {same}")
    growth = cost_model(rows)
    print("\n  single-process cost against users x lists, fitted as seconds = users x (a + b x lists):")
    print(f"  a = {growth['per_user_us']:.1f} us per user (the part that does not depend on the lists), "
          f"b = {growth['per_user_list_us']:.2f} us per user-list")
    print(f"  {'users':>10}{'lists':>7}{'seconds':>9}{'fitted':>9}{'error':>8}")
    for (n, nl, sec), fit in zip(rows, growth["fitted_seconds"]):
        print(f"  {n:>10,}{nl:>7}{sec:>9.2f}{fit:>9.2f}{(sec - fit) / fit:>+8.1%}")
    return {"growth": growth, "data": "synthetic-random", "users": n_users, "lists": n_lists, "k": k,
            "single_users_per_s_per_core": round(n_users / single_s), "ray_users_per_s_per_core": round(n_users / ray_s / cores),
            "ray_cores": cores, "peak_rss_mb": {"single": round(mem_single.peak_mb), "ray": round(mem_ray.peak_mb)},
            "identical": bool(same)}


def cost_model(rows: list[tuple[int, int, float]]) -> dict:
    """Least squares of seconds per user on (1, lists): the scorer's cost is linear in users x
    lists plus a per-user part that does not depend on the lists; the fit's errors say how well."""
    users = np.array([r[0] for r in rows], float)
    lists = np.array([r[1] for r in rows], float)
    secs = np.array([r[2] for r in rows], float)
    (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(lists), lists], axis=1), secs / users, rcond=None)
    fitted = users * (a + b * lists)
    return {"per_user_us": float(a * 1e6), "per_user_list_us": float(b * 1e6), "fitted_seconds": [round(float(f), 2) for f in fitted],
            "max_abs_error": float(np.max(np.abs(secs - fitted) / fitted)),
            "points": [{"users": int(n), "lists": int(nl), "seconds": round(float(s), 2)} for n, nl, s in rows]}


def _fit_subset(models, n_lists: int):
    """The first n lists of a fitted bundle (for the scaling rows, without refitting)."""
    import dataclasses

    keep = models.seed_list < n_lists
    return dataclasses.replace(models, list_ids=models.list_ids[:n_lists], n_seeds=models.n_seeds[:n_lists],
                               shares=models.shares[:n_lists], tables=models.tables[:n_lists],
                               classifiers=models.classifiers[:n_lists], seed_list=models.seed_list[keep], seed_user=models.seed_user[keep])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--users", type=int, help="speed mode: this many random 64-d unit vectors")
    parser.add_argument("--lists", type=int, default=100, help="speed mode: seed lists scored at once")
    parser.add_argument("--per-bucket", type=int, default=16, help="quality mode: seed lists per size bucket")
    parser.add_argument("--stage", choices=["test", "validation"], default="test")
    parser.add_argument("--run-dir")
    parser.add_argument("--reuse", action="store_true", help="keep the run's embeddings if trained with the same config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if args.users:
        out = speed(args.users, args.lists, args.overrides)
    else:
        out = quality(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
