"""Retrieval side by side: which user representation earns its cost, on the same protocols.

    python -m bench.retrieval --data ml-100k            # per-user temporal 80/20, all-action and next-item
    python -m bench.retrieval --data lastfm             # the spine's held-out artist, 392 held-out users
    python -m bench.retrieval --data synthetic          # planted multi-community users
    python -m bench.retrieval --data ml-100k --tune     # try each retriever's grid on the validation part first
    python -m bench.retrieval --data ml-100k --only pooled,multi_interest --set
    retrieval.multi_interest.distance_threshold=1.5
    python -m bench.retrieval --data lastfm --tune --jobs 6   # fits in 6 processes (each grid setting is one task)

Every retriever fits on the protocol's inputs only (reco.retrieval.protocol): settings and epochs
are chosen on the validation part carved from the inputs, then (MovieLens) every model is refitted
on the whole inputs with the chosen settings and scored once on the targets. The spine's StarSpace
is trained here on the same inputs (the same steps as train_embeddings, in one process, like every
model here: the Ray jobs run the same reco/ code on workers). Prints validation and test tables,
hit@10 by user diversity, fit time and per-request latency (one user, k=100, this process, no
HTTP); the last line is one JSON object. With ``--jobs N`` the fits run in N processes (spawned,
one torch thread each unless ``--threads``): every grid setting is one task, a retriever's refit
starts once its grid is done; latencies are then measured beside other fits, so they are noisier.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time

import numpy as np
import torch

from bench.retrieval_data import Dataset, load
from bench.retrieval_tasks import Setup, install, run_all
from reco.config import Config, load_config
from reco.retrieval.data import TrainingData
from reco.retrieval.protocol import KS, Scores, by_diversity
from reco.retrieval.registry import create_retriever
from reco.retrieval.training import starspace_topic_vectors

log = logging.getLogger("bench.retrieval")
CONFIGS = {
    "ml-100k": "configs/retrieval-ml-100k.yaml",
    "lastfm": "configs/retrieval-lastfm.yaml",
    "synthetic": "configs/retrieval-synthetic.yaml",
}
ORDER = [
    "popularity",
    "last_items_knn",
    "pooled",
    "multi_interest",
    "sequence_all_action",
    "sequence_next_item",
    "two_tower",
    "pixie",
    "mf",
    "als",
]
DIVERSE_SHARE = 0.1  # an interest counts towards a user's diversity when it holds this share of the user's topics
DIVERSITY_CUT = (
    2.0  # Ward height of the diversity breakdown (unit topic vectors): median user ~2-3 interests on ML-100K
)


def topic_vectors(cfg: Config, data: TrainingData, epochs: int | None = None) -> tuple[np.ndarray, int]:
    emb = cfg.embedding.model_copy(update={"epochs": epochs} if epochs else {})
    vecs, state = starspace_topic_vectors(
        data if epochs is None else TrainingData(**{**data.__dict__, "validation": None}), emb
    )
    return vecs, state.best_epoch if epochs is None else epochs


def diversity_of(ds: Dataset, cfg: Config) -> tuple[dict[int, int], str]:
    """A user's diversity: planted communities (synthetic), else interest clusters of the user's
    test inputs, counted at one fixed Ward cut (not the tuned retrieval one, which may split a
    user into single topics) and only where a cluster holds 10% or more of the user's topics."""
    if ds.planted_communities is not None:
        return ds.planted_communities, "planted communities"
    c = cfg.retrieval.model_copy(deep=True)
    c.multi_interest.distance_threshold, c.multi_interest.half_life_days = DIVERSITY_CUT, None
    mi = create_retriever("multi_interest", c)
    mi.set_items(ds.protocol.fit_test.topic_vectors)
    mi.index_users(ds.protocol.test.inputs)
    counts = mi.interest_counts(min_share=DIVERSE_SHARE)
    return (
        dict(zip(mi.users.user_ids.tolist(), counts.tolist())),
        f"Ward clusters cut at {DIVERSITY_CUT} holding >= {DIVERSE_SHARE:.0%} of the user's topics",
    )


def print_table(title: str, rows: dict[str, dict[str, float]], keys: list[str]) -> None:
    print(f"\n{title}")
    print(f"  {'retriever':<22}" + "".join(f"{k:>22}" for k in keys))
    for name, m in rows.items():
        print(f"  {name:<22}" + "".join(f"{m.get(k, float('nan')):>22.4f}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(CONFIGS), default="ml-100k")
    ap.add_argument(
        "--config", default="", help="config with the embedding and retrieval sections (default: per data set)"
    )
    ap.add_argument("--only", default="", help="comma-separated retrievers (default: all)")
    ap.add_argument("--tune", action="store_true", help="try each retriever's grid on the validation part first")
    ap.add_argument("--users", type=int, default=5000, help="synthetic users")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (1 is fastest on a busy 2-core machine)"
    )
    ap.add_argument("--jobs", type=int, default=1, help="processes fitting retrievers side by side")
    ap.add_argument(
        "--starspace-threads",
        type=int,
        default=0,
        help="torch threads for the StarSpace fit in this process (default: --threads)",
    )
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True
    )
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config or CONFIGS[args.data], args.set)
    labels = [x for x in ORDER if not args.only or x in args.only.split(",")]
    ds = load(args.data, args.users)
    p = ds.protocol
    print(
        f"data: {ds.label}; validation users {len(p.val)}, test users {len(p.test)}, refit on the whole inputs: "
        f"{p.refit}"
    )
    for note in p.notes:
        print(f"  note: {note}")
    torch.set_num_threads(args.starspace_threads or args.threads)
    t = time.perf_counter()
    p.fit_val.topic_vectors, best_epoch = topic_vectors(cfg, p.fit_val)
    p.fit_test.topic_vectors = topic_vectors(cfg, p.fit_test, best_epoch)[0] if p.refit else p.fit_val.topic_vectors
    print(f"StarSpace topic vectors: best epoch {best_epoch} by validation recall@50, {time.perf_counter() - t:.0f}s")
    torch.set_num_threads(args.threads)
    install(cfg, ds)
    setup = Setup(
        args.data,
        args.users,
        args.config or CONFIGS[args.data],
        args.set,
        args.threads,
        p.fit_val.topic_vectors,
        p.fit_test.topic_vectors,
    )
    t = time.perf_counter()
    results, errors = run_all(labels, args.tune, p.refit, args.jobs, setup)
    print(f"fits: {time.perf_counter() - t:.0f}s in {max(args.jobs, 1)} process(es)")
    for label, err in errors.items():
        print(f"  {label}: not run ({err})")
    tests: dict[str, Scores] = {k: v["test"] for k, v in results.items()}
    print_table(
        "validation (carved from the inputs; settings and epochs chosen here)",
        {k: v["val"] for k, v in results.items()},
        ["recall@10", "recall@50", "recall@100", "next_item_recall@10"],
    )
    print_table(
        "test",
        {k: v.summary for k, v in tests.items()},
        [f"recall@{k}" for k in KS] + [f"next_item_recall@{k}" for k in KS],
    )
    diversity, source = diversity_of(ds, cfg)
    by_div = (
        {lab: by_diversity(s.per_user["recall@10"], s.user_ids, diversity) for lab, s in tests.items()}
        if diversity
        else {}
    )
    if by_div:
        any_lab = next(iter(by_div))
        counts = {b: by_div[any_lab][b]["users"] for b in ("1", "2", "3+")}
        print_table(
            f"test recall@10 (hit@10 with one target) by diversity: {source}; users {counts}",
            {lab: {b: v["value"] for b, v in d.items()} for lab, d in by_div.items()},
            ["1", "2", "3+"],
        )
    print_table(
        "cost",
        {
            k: {"fit_seconds": v["fit_seconds"], "p50_ms": v["latency_ms"]["p50"], "p99_ms": v["latency_ms"]["p99"]}
            for k, v in results.items()
        },
        ["fit_seconds", "p50_ms", "p99_ms"],
    )
    knn = tests.get("last_items_knn")
    if knn is not None:
        for lab, s in tests.items():
            if lab in ("last_items_knn", "popularity"):
                continue
            wins = [k for k in (10, 100) if s.summary[f"recall@{k}"] > knn.summary[f"recall@{k}"]]
            if len(wins) < 2:
                print(
                    f"  {lab} vs the last-5-items kNN: recall@10 {s.summary['recall@10']:.4f} vs "
                    f"{knn.summary['recall@10']:.4f}, "
                    f"recall@100 {s.summary['recall@100']:.4f} vs {knn.summary['recall@100']:.4f}: "
                    + ("not earning its cost here" if not wins else f"earns its cost only at recall@{wins[0]}")
                )
    out = {"data": args.data}
    for k in KS:
        out[f"recall@{k}"] = {lab: round(s.summary[f"recall@{k}"], 4) for lab, s in tests.items()}
    for k in KS:
        out[f"next_item_recall@{k}"] = {lab: round(s.summary[f"next_item_recall@{k}"], 4) for lab, s in tests.items()}
    out["by_diversity"] = (
        {b: {lab: _r(d[b]["value"]) for lab, d in by_div.items()} for b in ("1", "2", "3+")} if by_div else {}
    )
    out["by_diversity_users"] = {b: by_div[next(iter(by_div))][b]["users"] for b in ("1", "2", "3+")} if by_div else {}
    out["validation_recall@50"] = {lab: round(v["val"]["recall@50"], 4) for lab, v in results.items()}
    out["fit_seconds"] = {lab: round(v["fit_seconds"], 1) for lab, v in results.items()}
    out["latency_ms_p99"] = {lab: round(v["latency_ms"]["p99"], 2) for lab, v in results.items()}
    out["chosen_settings"] = {lab: v["settings"] for lab, v in results.items() if v["settings"]}
    out["tuning"] = {lab: v["tried"] for lab, v in results.items() if v["tried"]}
    print(json.dumps(out))
    return 0


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


if __name__ == "__main__":
    raise SystemExit(main())
