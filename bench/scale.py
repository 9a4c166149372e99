"""Growth with scale: each pipeline step's time and peak memory at 100K, 1M (and 10M) synthetic users.

    python -m bench.scale                          # 100K and 1M users
    python -m bench.scale --sizes 100000,250000,500000,1000000   # a line through four sizes
    python -m bench.scale --sizes 100000,1000000,10000000

Per size: ingest, one training epoch (Ray Train, 2 workers), export, index build, and the
expand job over 100 seed lists drawn from the planted communities (10 to 1,000 seeds each).
Prints a table with the growth factor between consecutive sizes (linear growth = the size
ratio) and, last, one JSON object ``{"sizes": {"100000": {"ingest": {"seconds", "peak_rss_mb"},
...}}}``. From the third size on, a size whose peak memory, extended linearly from the growth
between the two sizes before it, would pass 80% of this machine's memory is skipped and
reported as such. With three sizes or more, each step's time is also fitted as a fixed part plus
a cost per user (``linear_fit``), with the fit's largest error. docs/scaling.md reads these figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from bench.peak_memory import measure
from ray_jobs import build_index, expand, export_embeddings, ingest, train_embeddings
from ray_jobs.common import init_ray, setup_logging
from reco import artifacts
from reco.config import Config, load_config
from reco.run_dir import RunDir

log = logging.getLogger("bench.scale")
STEPS = ("ingest", "train_epoch", "export", "index", "expand")


def seed_lists(run: RunDir, n_lists: int, path: Path, seed: int = 0) -> Path:
    """``n_lists`` seed lists of planted-community members, sizes spread log-uniformly over 10..1,000."""
    rng = np.random.default_rng(seed)
    truth = run.read_table(artifacts.USER_COMMUNITIES).to_pandas()
    raw = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"]).to_pandas().set_index("user_id")["raw_id"]
    members = truth.groupby("community")["user_id"].apply(np.asarray)
    rows = []
    for i, size in enumerate(np.round(np.logspace(1, 3, n_lists)).astype(int)):
        pool = members.iloc[i % len(members)]
        picked = rng.choice(pool, min(size, len(pool)), replace=False)
        rows.append(pd.DataFrame({"seed_list_id": f"list-{i:03d}", "user_id": raw.loc[picked].astype(str).to_numpy()}))
    pd.concat(rows).to_parquet(path, index=False)
    return path


def config(users: int, run_dir: str, sets: list[str]) -> Config:
    return load_config(
        "configs/local.yaml",
        [
            f"run_dir={run_dir}",
            f"data.synthetic.n_users={users}",
            f"ingest.num_shards={max(8, users // 50_000)}",
            "embedding.epochs=1",
            f"embedding.val_max_users={min(20_000, users)}",
            "embedding.num_workers=2",
            f"export.batch_size={8192 if users > 100_000 else 4096}",
            *sets,
        ],
    )


def one_size(users: int, root: Path, n_lists: int, sets: list[str]) -> dict[str, dict]:
    run_dir = root / f"users-{users}"
    cfg = config(users, str(run_dir), sets)
    run = RunDir(cfg.run_dir)
    figs: dict[str, dict] = {}
    _, figs["ingest"] = measure(f"{users:,} ingest", ingest.run, cfg, run, logger=log)
    _, figs["train_epoch"] = measure(f"{users:,} train 1 epoch", train_embeddings.run, cfg, run, logger=log)
    _, figs["export"] = measure(f"{users:,} export", export_embeddings.run, cfg, run, logger=log)
    _, figs["index"] = measure(f"{users:,} index", build_index.run, cfg, run, logger=log)
    cfg.expansion.seed_lists = str(seed_lists(run, n_lists, root / f"lists-{users}.parquet"))
    _, figs["expand"] = measure(f"{users:,} expand {n_lists} lists", expand.run, cfg, run, logger=log)
    shutil.rmtree(run_dir, ignore_errors=True)
    return figs


def projected_peak_mb(n0: int, figs0: dict, n1: int, figs1: dict, n2: int) -> float:
    """Peak memory at ``n2`` users, extended linearly from the growth between the two sizes before.

    Not from zero: the Ray processes' fixed memory (several GB of a 100K run's peak) does not
    grow with users, so scaling the whole peak by the user ratio would refuse 1M users on a
    machine that runs them in 8 GB."""
    p0, p1 = (max(f["peak_rss_mb"] for f in figs.values()) for figs in (figs0, figs1))
    return p1 + max(p1 - p0, 0.0) * (n2 - n1) / max(n1 - n0, 1)


def print_table(sizes: dict[str, dict[str, dict]]) -> None:
    keys = list(sizes)
    head = "".join(f"{int(k):>12,} users" + " " * 9 for k in keys)
    print(f"\n{'step':<12}{head}")
    for step in STEPS:
        cells = []
        for i, k in enumerate(keys):
            f = sizes[k][step]
            growth = ""
            if i:
                prev = sizes[keys[i - 1]][step]
                growth = f" x{f['seconds'] / max(prev['seconds'], 1e-9):.1f}"
            cells.append(f"{f['seconds']:>8.1f} s {f['peak_rss_mb']:>7.0f} MB{growth:>6}")
        print(f"{step:<12}" + "  ".join(cells))
    if len(keys) > 1:
        print(
            "(x: time growth against the previous size; linear growth is the user ratio "
            + ", ".join(f"x{int(keys[i]) / int(keys[i - 1]):.0f}" for i in range(1, len(keys)))
            + ")"
        )


def linear_fits(sizes: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per step, least squares of seconds = fixed + per_user x users over the sizes run (3 or more).

    Growth factors between two sizes mix a step's fixed cost (Ray start-up of its actors, the
    expand job's list fitting) with its per-user cost; the fit separates them, and its largest
    relative error says whether a straight line describes the step at all."""
    users = np.array([int(k) for k in sizes], float)
    if len(users) < 3:
        return {}
    out = {}
    for step in STEPS:
        secs = np.array([sizes[k][step]["seconds"] for k in sizes], float)
        (fixed, per_user), *_ = np.linalg.lstsq(np.stack([np.ones_like(users), users], axis=1), secs, rcond=None)
        fitted = fixed + per_user * users
        out[step] = {
            "fixed_seconds": round(float(fixed), 1),
            "seconds_per_million_users": round(float(per_user * 1e6), 1),
            "max_relative_error": round(float(np.max(np.abs(secs - fitted) / np.maximum(fitted, 1e-9))), 3),
        }
    return out


def print_fits(fits: dict[str, dict]) -> None:
    if not fits:
        return
    print(f"\n{'step':<12}{'fixed s':>9}{'s per 1M users':>16}{'largest error of the line':>27}")
    for step, f in fits.items():
        print(
            f"{step:<12}{f['fixed_seconds']:>9.1f}{f['seconds_per_million_users']:>16.1f}{f['max_relative_error']:>27.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000", help="synthetic user counts, ascending")
    p.add_argument("--lists", type=int, default=100, help="seed lists expanded per size")
    p.add_argument("--set", action="append", default=[], help="config override key=value for every size")
    args = p.parse_args(argv)
    setup_logging()
    sizes = [int(x) for x in args.sizes.split(",")]
    init_ray(config(sizes[0], "runs/unused", args.set).ray)
    memory_mb = psutil.virtual_memory().total / 2**20
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict[str, dict[str, dict]] = {}
    skipped: dict[str, str] = {}
    try:
        for i, users in enumerate(sizes):
            if i >= 2 and str(sizes[i - 1]) in results and str(sizes[i - 2]) in results:
                projected = projected_peak_mb(
                    sizes[i - 2], results[str(sizes[i - 2])], sizes[i - 1], results[str(sizes[i - 1])], users
                )
                if projected > 0.8 * memory_mb:
                    skipped[str(users)] = f"projected peak {projected:,.0f} MB > 80% of {memory_mb:,.0f} MB"
                    log.warning("skipping %d users: %s", users, skipped[str(users)])
                    continue
            results[str(users)] = one_size(users, root, args.lists, args.set)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(results)
    fits = linear_fits(results)
    print_fits(fits)
    for k, why in skipped.items():
        print(f"skipped {int(k):,} users: {why}")
    print(json.dumps({"sizes": results, "linear_fit": fits, "skipped": skipped}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
