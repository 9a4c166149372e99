"""Off-policy evaluation, Thompson sampling and budget pacing: every figure beside its baseline.

    python -m bench.ope                                   # configs/ope.yaml, a temporary run dir
    python -m bench.ope --run-dir runs/ope-bench          # keep the report and plots
    python -m bench.ope --set ope.synthetic.replicates=50 # any config override

Runs the ``ope`` Ray job (reco.policy.ope, reco.policy.bandits, reco.policy.pacing through ray_jobs.ope) and prints:
the OBD truth check (each estimator's estimate of the BTS policy's click rate from the random
logs, its 95% interval and relative error against BTS's own click rate), the replay of the
bandit policies on the random logs, the synthetic known-truth study (bias, sd, t and interval
coverage per estimator and target policy), cumulative regret of Thompson sampling against
epsilon-greedy and random, and the paced bidder against unpaced bidding and a fixed throttle
(value / hindsight optimum, overspend). The last line is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time

from bench.peak_memory import PeakRSS
from ray_jobs import ope
from ray_jobs.common import init_ray, setup_logging
from reco import artifacts
from reco.config import load_config
from reco.policy.report import bandit_table, headline, obd_table, pacing_table, replay_table, synthetic_table
from reco.run_dir import RunDir

log = logging.getLogger("bench.ope")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/ope.yaml")
    p.add_argument("--run-dir", default="", help="keep artifacts here (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    args = p.parse_args(argv)
    setup_logging()
    tmp = None if args.run_dir else tempfile.mkdtemp(prefix="bench-ope-")
    cfg = load_config(args.config, [f"run_dir={args.run_dir or tmp}", *args.set])
    init_ray(cfg.ray)
    run = RunDir(cfg.run_dir)
    t = time.perf_counter()
    with PeakRSS() as mem:
        ope.run(cfg, run)
    seconds = time.perf_counter() - t
    summary = run.read_json(artifacts.metrics("ope"))
    for title, lines in (
        ("Truth check 2: Open Bandit Dataset", obd_table(summary["obd"])),
        ("Replay on the random logs", replay_table(summary["replay"])),
        ("Truth check 1: synthetic bandit", synthetic_table(summary["synthetic"])),
        ("Thompson sampling, online", bandit_table(summary["bandits"])),
        ("Budget pacing", pacing_table(summary["pacing"])),
    ):
        print(f"\n== {title}\n")
        print("\n".join(lines))
    print(f"\njob wall time {seconds:.1f}s, peak RSS of the Ray process tree {mem.peak_mb:.0f} MB")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"report: {run.path('reports/ope.md')}")
    print(json.dumps(headline(summary)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
