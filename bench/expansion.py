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

Speed (random unit vectors, said so in the output; bench/expansion_speed.py):

    python -m bench.expansion --data synthetic --users 1000000 --lists 100
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import pyarrow as pa

from bench import expansion_speed
from reco import artifacts
from reco.expansion.list_definitions import TOPIC_LISTS

log = logging.getLogger("bench.expansion")
CONFIGS = {"ml-100k": "configs/ml-100k.yaml", "lastfm": "configs/lastfm.yaml", "synthetic": "configs/local.yaml"}
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
    from reco.data.formats import read_local, resolve_source
    from reco.expansion.list_definitions import topic_audiences

    prefix, min_weight = TOPIC_LISTS[cfg.data.format]
    raw = read_local(resolve_source(cfg.data))
    return topic_audiences(
        raw, cfg.expansion.buckets, per_bucket, cfg.expansion.synthetic_lists.min_size, prefix, min_weight
    )


def _write_seed_lists(cfg, run, data: str, defs) -> None:
    from ray_jobs.expand import record_truth, seed_list_input
    from reco.expansion.seed_lists import SCHEMA, lists_table, resolve
    from reco.vocab import Vocabulary

    users = Vocabulary.from_table(run.read_table(artifacts.USER_VOCAB), "user_id")
    if defs is None:
        table, source, truth = seed_list_input(cfg, run, users)
    else:
        names = [n for n, m in defs.lists.items() for _ in m]
        table = pa.table(
            {"seed_list_id": names, "user_id": [str(u) for m in defs.lists.values() for u in m]}, schema=SCHEMA
        )
        source = f"{data}: {TOPIC_LISTS[cfg.data.format][0]}<id> audiences, topics excluded from training"
        truth = None
    resolved = resolve(table, users, cfg.expansion.min_seeds, source)
    record_truth(run, truth)
    log.info("%d seed lists (%d rejected)", len(resolved.accepted), len(resolved.rejected))
    run.write_table(
        artifacts.SEED_LISTS,
        lists_table([(s.list_id, s.users) for s in resolved.accepted], users),
        step="bench.expansion",
        meta={"source": source},
    )


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
    return {
        "requests": n_requests,
        "seeds": seeds,
        "k": k,
        "users": ex.n_users,
        "load_s": round(load_s, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def _user_vectors_job(cfg, run) -> None:
    """With ``expansion.user_vectors`` naming a retriever, run its batch job on this run first
    (incremental: users whose history and model are unchanged keep their vectors)."""
    import importlib

    from ray_jobs.common import StepTimer
    from reco.expansion.user_vectors import POOLED
    from reco.retrieval.registry import RETRIEVERS

    name = cfg.expansion.user_vectors
    if name == POOLED:
        return
    cls = RETRIEVERS.get(name)
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
        both = pd.concat(
            [mine[mine.method == method].assign(method=name), pooled[pooled.method == method].assign(method=POOLED)]
        )
        out[method] = against_best_other(both, method=name)
    return out


def quality(args) -> dict:
    from ray_jobs import build_index, evaluate, export_embeddings, ingest, train_embeddings
    from ray_jobs.common import StepTimer, init_ray
    from reco.config import load_config
    from reco.expansion.report import comparison_lines, table_lines
    from reco.run_dir import RunDir

    overrides = [
        f"run_dir={args.run_dir or f'runs/expansion-bench-{args.data}'}",
        f"expansion.protocol.stage={args.stage}",
        *args.overrides,
    ]
    cfg = load_config(CONFIGS[args.data], overrides)
    defs = None
    if cfg.data.format in TOPIC_LISTS:
        defs = _topic_lists(cfg, args.data, args.per_bucket)
        cfg.ingest.exclude_topics = sorted(set(cfg.ingest.exclude_topics) | set(defs.exclude_topics))
    else:
        cfg.expansion.synthetic_lists.per_bucket = args.per_bucket
    run = RunDir(cfg.run_dir)
    init_ray(cfg.ray)
    steps = {
        "ingest": ingest.run,
        "train_embeddings": train_embeddings.run,
        "export_embeddings": export_embeddings.run,
        "build_index": build_index.run,
    }
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
    print(
        f"\nAudience expansion on {args.data} ({result['meta']['lists']} lists, {cfg.expansion.protocol.splits} "
        "splits, "
        f"stage {args.stage}, user vectors {cfg.expansion.user_vectors}, {t.seconds:.0f}s); report: "
        f"{run.path('reports/expansion.md')}\n"
    )
    print("\n".join(table_lines(result["buckets"], markdown=False)))
    print("\nBlend against the best other method, recall at |H|, paired over lists:")
    print("\n".join(f"  {x}" for x in comparison_lines(result["blend_vs_best"])))
    out = {
        "data": args.data,
        "user_vectors": cfg.expansion.user_vectors,
        "recall_at_holdout": result["recall_at_holdout"],
        "blend_vs_best": result["blend_vs_best"],
    }
    if (versus := _against_pooled(cfg, run)) is not None:
        print(
            f"\n{cfg.expansion.user_vectors} user vectors against the pooled embedding, recall at |H|, paired over "
            "lists:"
        )
        for method, by_bucket in versus.items():
            for bucket, v in by_bucket.items():
                print(
                    f"  {method:<10} {bucket:<7} {v['diff']:+.4f} ± {v['paired_se']:.4f} (z {v['z']:+.2f}): "
                    f"{v['verdict']}"
                )
        out["vs_pooled"] = versus
    if args.data == "synthetic" and args.stage == "test":
        lat = _expander_latency(cfg, run)
        print(
            f"AudienceExpander (in-process, blend): {lat['requests']} requests of {lat['seeds']} seeds, k={lat['k']}, "
            f"{lat['users']:,} users: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms (load {lat['load_s']} s)"
        )
        out["expander_latency_ms"] = {"p50": lat["p50_ms"], "p99": lat["p99_ms"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--users", type=int, help="speed mode: this many random 64-d unit vectors")
    parser.add_argument("--lists", type=int, default=100, help="speed mode: seed lists scored at once")
    parser.add_argument("--per-bucket", type=int, default=16, help="quality mode: seed lists per size bucket")
    parser.add_argument("--stage", choices=["test", "validation"], default="test")
    parser.add_argument("--run-dir")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the run's embeddings if trained with the same config"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if args.users:
        out = expansion_speed.speed(args.users, args.lists, args.overrides)
    else:
        out = quality(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
