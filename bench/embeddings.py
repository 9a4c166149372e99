"""Embedding quality and speed: StarSpace on Ray Train against the popularity baseline.

    python -m bench.embeddings --data lastfm                 # StarSpace's Last.fm protocol
    python -m bench.embeddings --data lastfm --workers 1,2   # what the second worker buys
    python -m bench.embeddings --data synthetic --users 1000000 --epochs 1   # the whole half at 1M users

Last.fm: 1,500 users train and 392 are held out entirely (``ingest.test_users``); each held-out
user has one random artist hidden and predicted from the rest, ranked among all artists the user
has not listened to, by the model and by popularity, in the same run. The training users' own
random held-out artist is the validation set that early stopping uses; the test users never
influence training. Prints hit@1/10/20/50 and mean rank for both, training wall time, training
examples per second and peak memory (the Ray process tree), per worker count; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

from bench.peak_memory import measure
from ray_jobs import build_index, evaluate, export_embeddings, ingest, train_embeddings
from ray_jobs.common import init_ray, setup_logging
from reco import artifacts
from reco.config import Config, load_config
from reco.run_dir import RunDir

log = logging.getLogger("bench.embeddings")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFIGS = {"lastfm": "configs/lastfm.yaml", "ml-100k": "configs/ml-100k.yaml", "synthetic": "configs/local.yaml"}


def _config(args: argparse.Namespace, run_dir: str) -> Config:
    sets = [f"run_dir={run_dir}"]
    if args.data == "lastfm":
        sets.append(f"data.path={SHARED / 'lastfm-2k' / 'user_artists.dat'}")
    elif args.data == "ml-100k":
        sets.append(f"data.path={SHARED / 'ml-100k' / 'u.data'}")
    else:
        users = args.users
        sets += [
            f"data.synthetic.n_users={users}",
            f"ingest.num_shards={max(8, users // 50_000)}",
            f"embedding.val_max_users={min(20_000, users)}",
            f"export.batch_size={8192 if users > 100_000 else 4096}",
        ]
    if args.epochs:
        sets.append(f"embedding.epochs={args.epochs}")
    return load_config(CONFIGS[args.data], sets + args.set)


def _hits_line(name: str, m: dict) -> str:
    hits = "".join(f" {m[f'hit@{k}']:>7.4f}" for k in (1, 10, 20, 50))
    return f"  {name:<12}{hits} {m['mean_rank']:>10.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=sorted(CONFIGS), default="lastfm")
    p.add_argument("--users", type=int, default=1_000_000, help="synthetic users")
    p.add_argument("--workers", default="2", help="Ray Train worker counts to compare, e.g. 1,2")
    p.add_argument("--epochs", type=int, default=0, help="override embedding.epochs")
    p.add_argument("--run-dir", default="", help="keep artifacts here (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    args = p.parse_args(argv)
    setup_logging()
    tmp = None if args.run_dir else tempfile.mkdtemp(prefix="bench-emb-")
    run_dir = args.run_dir or tmp
    cfg = _config(args, run_dir)
    init_ray(cfg.ray)
    run = RunDir(cfg.run_dir)
    steps: dict[str, dict] = {}
    ing, steps["ingest"] = measure("ingest", ingest.run, cfg, run)
    by_workers: dict[str, dict] = {}
    for w in [int(x) for x in args.workers.split(",")]:
        cfg.embedding.num_workers = w
        if run.exists(artifacts.TRAIN_STORAGE):
            shutil.rmtree(
                run.local_path(artifacts.TRAIN_STORAGE)
            )  # a fresh training run per worker count, not a resume
        tr, fig = measure(f"train_embeddings ({w} workers)", train_embeddings.run, cfg, run)
        ev, fig_ev = measure("evaluate", evaluate.holdout_evaluation, cfg, run)
        by_workers[str(w)] = {"train": tr, "train_fig": fig, "evaluation": ev}
        steps[f"train_{w}w"], steps[f"evaluate_{w}w"] = fig, fig_ev
    _, steps["export"] = measure("export_embeddings", export_embeddings.run, cfg, run)
    idx, steps["index"] = measure("build_index", build_index.run, cfg, run)

    last = by_workers[str(int(args.workers.split(",")[-1]))]
    role = "test" if "test" in last["evaluation"] else "validation"
    model, pop = last["evaluation"][role]["starspace"], last["evaluation"][role]["popularity"]
    print(
        f"\n== {args.data}: {ing['users']:,} users ({ing['test_users']:,} held out), {ing['topics']:,} topics, "
        f"{ing['interactions']:,} interactions"
    )
    print(f"\nHeld-out topic prediction, {role} users ({model['targets']:,} targets), ranked among unseen topics:")
    print(f"  {'':<12} {'hit@1':>7} {'hit@10':>7} {'hit@20':>7} {'hit@50':>7} {'mean rank':>10}")
    print(_hits_line("StarSpace", model))
    print(_hits_line("popularity", pop))
    print("\nTraining (Ray Train, DDP on CPU):")
    print(
        f"  {'workers':>7} {'epochs':>6} {'best':>4} {'fit wall s':>10} {'train s':>8} {'examples/s':>11} "
        f"{'peak MB':>8} {'hit@10':>7}"
    )
    for w, r in by_workers.items():
        t = r["train"]
        print(
            f"  {w:>7} {t['epochs_run']:>6} {t['best_epoch']:>4} {t['fit_seconds']:>10.1f} {t['train_seconds']:>8.1f} "
            f"{t['examples_per_second']:>11,.0f} {r['train_fig']['peak_rss_mb']:>8.0f} "
            f"{r['evaluation'][role]['starspace']['hit@10']:>7.4f}"
        )
    print("\nSteps (wall time, peak RSS of the Ray process tree):")
    for name, f in steps.items():
        print(f"  {name:<18} {f['seconds']:>8.1f} s {f['peak_rss_mb']:>9.0f} MB")
    print(f"  index: {idx['kind']}, recall@10 vs exact {idx['recall@10_vs_exact']:.4f}")
    t = last["train"]
    result = {
        "data": args.data,
        "users": ing["users"],
        "role": role,
        "hit@1": model["hit@1"],
        "hit@10": model["hit@10"],
        "hit@20": model["hit@20"],
        "hit@50": model["hit@50"],
        "mean_rank": model["mean_rank"],
        "popularity_hit@1": pop["hit@1"],
        "popularity_hit@10": pop["hit@10"],
        "popularity_hit@20": pop["hit@20"],
        "popularity_hit@50": pop["hit@50"],
        "popularity_mean_rank": pop["mean_rank"],
        "train_seconds": t["train_seconds"],
        "fit_wall_seconds": t["fit_seconds"],
        "examples_per_second": t["examples_per_second"],
        "peak_rss_mb": max(f["peak_rss_mb"] for f in steps.values()),
        "workers": {
            w: {
                "train_seconds": r["train"]["train_seconds"],
                "fit_wall_seconds": r["train"]["fit_seconds"],
                "examples_per_second": r["train"]["examples_per_second"],
                "epochs": r["train"]["epochs_run"],
                "hit@10": r["evaluation"][role]["starspace"]["hit@10"],
            }
            for w, r in by_workers.items()
        },
        "steps": steps,
    }
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
