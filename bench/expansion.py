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

Several user representations (``expansion.representations``, docs/expansion.md#representations):
the configs of ml-100k, Last.fm and synthetic list StarSpace, ALS and co-engagement, so one run
scores every method on each, plus the ensemble whose weights the validation stage chose:

    python -m bench.expansion --data ml-100k --stage validation   # prints and records the choice
    python -m bench.expansion --data ml-100k --choose --seeds 3   # per seed: validation chooses, test measures

``--choose`` runs the validation stage first (``--val-splits`` random splits, 6 by default: twice
the test's, since the choice compares many weightings on a few held-out seeds per list) and
applies its choice to the test stage of the same run (the config's recorded weights are then
not used); ``--seeds N`` repeats the whole run
(StarSpace, ALS, splits, classifiers) with seeds 0..N-1 in run directories of their own (with
``--reuse``, each seed's StarSpace spine is kept where its config is unchanged) and prints the
mean recall at |H| per bucket beside today's figures (StarSpace alone, the same run) and the
targets, the ensemble against the best other method paired over lists, and each representation's
fit time and peak memory.

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
# Settings the quality bench adds to a data set's config: synthetic's config is the embedded
# pipeline's default, which scores the StarSpace embedding alone; the bench scores all three.
BENCH_SETS = {"synthetic": ["expansion.representations=[starspace,als,coengagement]"]}
# Today's figures before several representations (docs/expansion.md's table, StarSpace alone, test
# split): the blend and the best method per bucket.
TODAY = {
    "ml-100k": {"small": (0.064, 0.068, "voting"), "medium": (0.173, 0.173, "blend"), "large": (0.285, 0.285, "blend")},
    "lastfm": {
        "small": (0.111, 0.114, "logreg"),
        "medium": (0.220, 0.228, "classifier"),
        "large": (0.359, 0.367, "logreg"),
    },
    "synthetic": {
        "small": (0.022, 0.022, "blend"),
        "medium": (0.031, 0.038, "centroid"),
        "large": (0.863, 0.868, "logreg"),
    },
}
# Recall at |H| the issue asks of the ensemble (test split, mean over seeds), per data set and bucket.
TARGETS = {
    "ml-100k": {"small": 0.09, "medium": 0.20, "large": 0.35},
    "lastfm": {"small": 0.19, "medium": 0.26, "large": 0.42},
}
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
    from reco.expansion.user_vectors import ALS, POOLED, STARSPACE
    from reco.retrieval.registry import RETRIEVERS

    name = cfg.expansion.user_vectors
    if name in (POOLED, STARSPACE, ALS):  # ALS: ray_jobs.evaluate.ensure_representations fits it
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
    if cfg.expansion.representations:  # several representations: the protocol pairs them itself
        return None
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


def _seed_overrides(seed: int) -> list[str]:
    """Every seed of a whole run: StarSpace, ALS, the protocol's splits, the classifiers, the LSH planes."""
    keys = ("embedding.seed", "expansion.als.seed", "expansion.protocol.seed", "expansion.classifier.seed")
    return [f"{k}={seed}" for k in (*keys, "expansion.density.seed")]


def _representation_costs(cfg, run, spine: dict) -> dict:
    """Fit seconds and peak memory of each representation the run scores."""
    import tracemalloc

    from reco.embedding.als import run_matrix
    from reco.expansion.coengagement import CoEngagement
    from reco.expansion.user_vectors import ALS, COENGAGEMENT, STARSPACE, representations

    out = {}
    names = representations(cfg.expansion)
    if STARSPACE in names:
        out[STARSPACE] = spine.get("train_embeddings") or {"seconds": None, "peak_rss_mb": None, "note": "reused"}
    if ALS in names and run.has(artifacts.ALS_USER_VECTORS):
        meta = run.entry(artifacts.ALS_USER_VECTORS)["meta"]
        out[ALS] = {"seconds": meta.get("fit_seconds"), "peak_mb": meta.get("fit_peak_mb")}
    if COENGAGEMENT in names:
        _, matrix = run_matrix(run)
        tracemalloc.start()
        t = time.perf_counter()
        co = CoEngagement.build(matrix, cfg.expansion.coengagement)
        secs = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows = co.rows
        held = rows.data.nbytes + rows.indices.nbytes + rows.indptr.nbytes
        out[COENGAGEMENT] = {
            "seconds": round(secs, 2),
            "peak_mb": round(peak / 2**20, 1),
            "held_mb": round(held / 2**20, 1),
        }
    return out


def _run_spine(args, cfg, run) -> dict:
    from bench.peak_memory import measure
    from ray_jobs import build_index, export_embeddings, ingest, train_embeddings

    steps = {
        "ingest": ingest.run,
        "train_embeddings": train_embeddings.run,
        "export_embeddings": export_embeddings.run,
        "build_index": build_index.run,
    }
    if args.reuse and _spine_is_current(run, cfg):
        log.info("reusing the embeddings and index in %s (same data, ingest and embedding config)", run.uri)
        return {}
    figures = {}
    for name in SPINE:
        _, figures[name] = measure(name, steps[name], cfg, run, logger=log)
    return figures


def _print_choice(result: dict) -> None:
    choice = result.get("ensemble_choice")
    if not choice:
        return
    print("\nEnsemble chosen on this validation run (recall at |H|; test seeds never read):")
    for b, c in choice.items():
        w = ", ".join(f"{k} {v:g}" for k, v in c["weights"].items())
        print(
            f"  {b:<7} {w} (offset {c['offset']:g}): {c['validation_recall']:.4f} vs best single "
            f"{c['best_single']} {c['best_single_recall']:.4f}"
        )


def _apply_choice(cfg, choice: dict) -> None:
    """The validation choice into the config's ensemble section (the test stage then uses it)."""
    from reco.expansion.config import EnsembleWeights

    cfg.expansion.ensemble.weights = EnsembleWeights(**{b: c["weights"] for b, c in choice.items()})
    cfg.expansion.ensemble.offsets = {b: c["offset"] for b, c in choice.items()}


def one_run(args, seed: int) -> dict:
    """One whole run (spine, representations, seed lists, protocol) with every seed set to ``seed``."""
    from ray_jobs import evaluate
    from ray_jobs.common import StepTimer, init_ray
    from reco.config import load_config
    from reco.expansion.report import comparison_lines, table_lines
    from reco.run_dir import RunDir

    base_dir = args.run_dir or f"runs/expansion-bench-{args.data}"
    overrides = [
        f"run_dir={base_dir if seed == 0 else f'{base_dir}-s{seed}'}",
        f"expansion.protocol.stage={args.stage}",
        *(_seed_overrides(seed) if seed else []),
        *BENCH_SETS.get(args.data, []),
        *args.overrides,
    ]
    cfg = load_config(CONFIGS[args.data], overrides)
    if args.stage == "validation":
        cfg.expansion.protocol.splits = args.val_splits
    defs = None
    if cfg.data.format in TOPIC_LISTS:
        defs = _topic_lists(cfg, args.data, args.per_bucket)
        cfg.ingest.exclude_topics = sorted(set(cfg.ingest.exclude_topics) | set(defs.exclude_topics))
    else:
        cfg.expansion.synthetic_lists.per_bucket = args.per_bucket
    run = RunDir(cfg.run_dir)
    init_ray(cfg.ray)
    spine = _run_spine(args, cfg, run)
    _write_seed_lists(cfg, run, args.data, defs)
    _user_vectors_job(cfg, run)
    evaluate.ensure_representations(cfg, run)
    costs = _representation_costs(cfg, run, spine)
    chosen = None
    if args.choose and args.stage == "test":
        val_cfg = cfg.model_copy(deep=True)
        val_cfg.expansion.protocol.stage = "validation"
        val_cfg.expansion.protocol.splits = args.val_splits
        with StepTimer("expansion protocol, validation stage (the ensemble's choice)"):
            val = evaluate.expansion_evaluation(val_cfg, run)
        _print_choice(val)
        chosen = val.get("ensemble_choice")
        if chosen:
            _apply_choice(cfg, chosen)
    with StepTimer("expansion protocol") as t:
        result = evaluate.expansion_evaluation(cfg, run, chosen)
    headline = result["meta"].get("headline", "blend")
    print(
        f"\nAudience expansion on {args.data}, seed {seed} ({result['meta']['lists']} lists, "
        f"{cfg.expansion.protocol.splits} splits, stage {args.stage}, representations "
        f"{cfg.expansion.representations or [cfg.expansion.user_vectors]}, {t.seconds:.0f}s); report: "
        f"{run.path('reports/expansion.md')}\n"
    )
    print("\n".join(table_lines(result["buckets"], markdown=False)))
    print(f"\n{headline.capitalize()} against the best other method, recall at |H|, paired over lists:")
    print("\n".join(f"  {x}" for x in comparison_lines(result["blend_vs_best"])))
    if not chosen:
        _print_choice(result)
    out = {
        "data": args.data,
        "seed": seed,
        "user_vectors": cfg.expansion.user_vectors,
        "representations": cfg.expansion.representations,
        "headline": headline,
        "recall_at_holdout": result["recall_at_holdout"],
        "blend_vs_best": result["blend_vs_best"],
        "costs": costs,
    }
    if result.get("ensemble_choice"):
        out["ensemble_choice"] = result["ensemble_choice"]
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
    if args.data == "synthetic" and args.stage == "test" and not cfg.expansion.representations:
        lat = _expander_latency(cfg, run)
        print(
            f"AudienceExpander (in-process, blend): {lat['requests']} requests of {lat['seeds']} seeds, k={lat['k']}, "
            f"{lat['users']:,} users: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms (load {lat['load_s']} s)"
        )
        out["expander_latency_ms"] = {"p50": lat["p50_ms"], "p99": lat["p99_ms"]}
    return out


def cost_lines(runs: list[dict], mean: dict, buckets: list[str]) -> list[str]:
    """Each representation's best recall at |H| per bucket beside what it costs to fit (mean over the
    runs that fitted it: a reused StarSpace spine has no figure)."""
    lines = [
        "| representation | best recall at K = held-out size ("
        + ", ".join(buckets)
        + ") | fit seconds | peak memory MB |",
        "|---|---|---:|---:|",
    ]
    names = sorted({n for r in runs for n in r.get("costs", {})})
    for name in names:
        own = [
            max((v for m, v in mean[b].items() if m == name or m.startswith(f"{name}:")), default=float("nan"))
            for b in buckets
        ]
        costs = [r["costs"][name] for r in runs if r.get("costs", {}).get(name, {}).get("seconds") is not None]
        secs = f"{np.mean([c['seconds'] for c in costs]):.1f}" if costs else "reused"
        mem_key = "peak_rss_mb" if name == "starspace" else "peak_mb"
        mem = f"{np.mean([c[mem_key] for c in costs]):.0f}" if costs else "-"
        lines.append(f"| {name} | " + " / ".join(f"{v:.3f}" for v in own) + f" | {secs} | {mem} |")
    lines += [
        "",
        "(StarSpace: the train_embeddings step on Ray Train, peak RSS of the whole local Ray process tree; ALS: the "
        "fit on one Ray worker, numpy's peak allocations; co-engagement: building its sparse rows, peak allocations.)",
    ]
    return lines


def summary_lines(data: str, runs: list[dict]) -> list[str]:
    """Mean over the runs' seeds: today's figures (StarSpace alone), each representation's best method,
    the ensemble, the target; the paired verdicts per seed; each representation's cost."""
    buckets = [b for b in ("small", "medium", "large") if all(b in r["recall_at_holdout"] for r in runs)]
    head = runs[0]["headline"]
    lines = [f"Recall at |H|, test split, mean over {len(runs)} seed(s) of the whole run ({data}):", ""]
    methods = sorted({m for r in runs for b in buckets for m in r["recall_at_holdout"][b]})
    mean = {
        b: {
            m: float(np.mean([r["recall_at_holdout"][b].get(m, np.nan) for r in runs]))
            for m in methods
            if all(m in r["recall_at_holdout"][b] for r in runs)
        }
        for b in buckets
    }
    reps = sorted({m.split(":")[0] for m in methods if ":" in m} | ({"coengagement"} & set(methods)))
    header = ["bucket", "today: blend", "today: best method"]
    header += [f"best on {r} (this run)" for r in reps] + [head, "target"]
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for b in buckets:
        today = TODAY.get(data, {}).get(b)
        cells = [b, f"{today[0]:.3f}", f"{today[1]:.3f} ({today[2]})"] if today else [b, "-", "-"]
        for rep in reps:
            own = {m: v for m, v in mean[b].items() if m == rep or m.startswith(f"{rep}:")}
            top = max(own, key=own.get)
            cells.append(f"{own[top]:.3f} ({top.split(':')[-1]})")
        target = TARGETS.get(data, {}).get(b)
        cells += [f"**{mean[b].get(head, float('nan')):.3f}**", f">= {target:.2f}" if target else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "(today: StarSpace alone before several representations, docs/expansion.md, the same lists and splits; "
        "this run's StarSpace is the 'best on starspace' column)",
    ]
    lines += ["", f"{head} against the best other method, paired over lists, per seed:"]
    for r in runs:
        for b, v in r["blend_vs_best"].items():
            lines.append(
                f"  seed {r['seed']} {b:<7} {head} - {v['best_other']}: {v['diff']:+.4f} ± {v['paired_se']:.4f} "
                f"(z {v['z']:+.2f}): {v['verdict']}"
            )
    lines += ["", *cost_lines(runs, mean, buckets)]
    return lines


def quality(args) -> dict:
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs.append(one_run(args, seed))
        log.info("seed %d done: %s", seed, json.dumps(runs[-1]))
    if args.stage == "test":
        print("\n" + "\n".join(summary_lines(args.data, runs)))
    if len(runs) == 1:
        return runs[0]
    return {"data": args.data, "runs": runs}


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
    parser.add_argument("--seeds", type=int, default=1, help="quality mode: whole runs with seeds 0..N-1, averaged")
    parser.add_argument("--first-seed", type=int, default=0, help="quality mode: the first run's seed")
    parser.add_argument(
        "--choose", action="store_true", help="test stage: choose the ensemble on the validation stage first"
    )
    parser.add_argument(
        "--val-splits", type=int, default=6, help="random splits of the validation stage (more: a less noisy choice)"
    )
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
