"""ope: off-policy evaluation on OBD or your own logs, a known-truth bandit, Thompson sampling, budget pacing.

Independent studies, their work spread over Ray tasks (one CPU each):

- The off-policy estimate (IPW, SNIPW, DM, DR, switch-DR), on one of two sources (``ope.source``):
  - obd: the BTS policy's value estimated from the OBD uniform-random logs, against the click
    rate BTS got in its own logs. Reward-model folds and bootstrap chunks (resampling both logs;
    with the model fixed, and refitted per draw) are tasks. Plus replay evaluation of the bandit
    policies on the random logs, one task per (policy, seed).
  - logs: your own CSV / Parquet log (``ope.logs``) and a target from ``ope.target`` (a bandit
    fitted on the log's earliest rows, or a run's trained ranker): ray_jobs/ope_logs.py.

The other studies run when listed in ``ope.studies``:

- Synthetic: many independent logs from a bandit with known rewards; chunks of replicates are
  tasks. Bias, spread and interval coverage per estimator and target policy.
- Bandits: online simulation, one task per (policy, seed); cumulative regret.
- Pacing: one task per simulated day; value against the hindsight optimum, overspend.

Writes ``metrics/ope.json`` (everything), ``metrics/ope_headline.json`` and
``reports/ope.md`` with its PNG plots into the run directory; the page names the data it read
and the target policy with its settings.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import ray

from ray_jobs.common import StepTimer, job_main
from ray_jobs.ope_logs import logs_study
from ray_jobs.ope_tasks import cross_fit, pooled
from reco import artifacts
from reco.config import Config
from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.factory import POLICIES, make_policy
from reco.policy.bandits.plots import regret_png
from reco.policy.bandits.replay import obd_features, replay
from reco.policy.bandits.simulation import bandit_environment, regret_summary, simulate
from reco.policy.config import PolicyConfig
from reco.policy.ope.bootstrap import draw_seeds, paired_bootstrap, percentile_interval, split_draws
from reco.policy.ope.config import EstimatorConfig, SyntheticOPEConfig
from reco.policy.ope.estimators import all_estimators, ope_inputs
from reco.policy.ope.logged_data import LoggedFeedback, read_obd
from reco.policy.ope.obd_target import OBDEvaluation, assemble_result, on_policy_truth, time_edges, weight_diagnostics
from reco.policy.ope.plots import logs_estimates_png, obd_estimates_png, synthetic_png
from reco.policy.ope.replicates import SyntheticSetup, replicate_seeds, run_replicates, summarize, synthetic_setup
from reco.policy.pacing.config import PacingConfig
from reco.policy.pacing.plots import spend_png
from reco.policy.pacing.simulate import day_seeds, simulate_day, summarize_days
from reco.policy.report import headline, report_md
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.ope")
STEP = "ope"
CURVE_POINTS = 200


# -- Ray tasks: thin wrappers around reco/ ---------------------------------------------------------


@ray.remote(num_cpus=1)
def _paired_bootstrap(
    evaluation: OBDEvaluation, q_hat: np.ndarray | None, draws: int, seed: int
) -> dict[str, np.ndarray]:
    """Draws resampling both OBD logs; q_hat None re-cross-fits the reward model in every draw."""
    estimate = partial(evaluation.estimates, q_hat=q_hat)
    return paired_bootstrap(estimate, evaluation.logged.n, evaluation.target.n, draws, seed)


@ray.remote(num_cpus=1)
def _replicates(setup: SyntheticSetup, cfg: SyntheticOPEConfig, est: EstimatorConfig, seeds: list[int]) -> list[dict]:
    return run_replicates(setup, cfg, est, seeds)


@ray.remote(num_cpus=1)
def _simulate(cfg: BanditConfig, policy: str, seed: int) -> np.ndarray:
    return simulate(bandit_environment(cfg), policy, cfg, seed)


@ray.remote(num_cpus=1)
def _replay(log_: LoggedFeedback, cfg: BanditConfig, policy: str, seed: int) -> dict:
    if cfg.replay_rows:
        log_ = log_.subset(np.arange(min(cfg.replay_rows, log_.n)))
    dim = obd_features(log_, 0).shape[1]
    r = replay(log_, make_policy(policy, log_.n_actions, dim, cfg), obd_features, seed)
    return {"matches": r.matches, "clicks": r.clicks, "value": r.value, "ci": list(r.ci)}


@ray.remote(num_cpus=1)
def _pacing_day(cfg: PacingConfig, seed: int) -> dict:
    return simulate_day(cfg, seed)


def _chunks(items: list, n: int) -> list[list]:
    return [c.tolist() for c in np.array_split(np.asarray(items, dtype=object), min(n, len(items))) if len(c)]


# -- studies -------------------------------------------------------------------------------------


def load_obd(cfg: PolicyConfig) -> tuple[LoggedFeedback, LoggedFeedback]:
    """(logging policy's log, target policy's log), user features encoded alike."""
    root = cfg.obd.path
    logged, cats = read_obd(root, cfg.obd.logging_policy, cfg.obd.campaign)
    target, _ = read_obd(root, cfg.obd.target_policy, cfg.obd.campaign, categories=cats)
    return logged, target


def obd_study(cfg: PolicyConfig, logged: LoggedFeedback, target: LoggedFeedback, log_ref: ray.ObjectRef) -> dict:
    """Estimates, intervals and relative errors for the target policy on the logging policy's rows."""
    edges = time_edges([logged, target], cfg.obd.time_blocks)
    evaluation = OBDEvaluation(logged, target, edges, cfg.reward_model, cfg.estimators)
    q_hat, chosen_c = cross_fit(log_ref, logged.n, logged.n_actions, cfg.reward_model)
    inputs = ope_inputs(logged, evaluation.action_dist(), q_hat)
    terms = all_estimators(inputs, cfg.estimators.clip, cfg.estimators.switch_tau)
    b = cfg.bootstrap
    eval_ref, q_ref = ray.put(evaluation), ray.put(q_hat)
    row_refs = [
        _paired_bootstrap.remote(eval_ref, q_ref, n, s)
        for n, s in zip(split_draws(b.draws, b.tasks), draw_seeds(b.seed, b.tasks))
    ]
    refit_ci = None
    if b.refit_draws:
        # the refit draws use the regularisation the full-data folds picked (one C, no inner CV per draw)
        refit_cfg = cfg.reward_model.model_copy(
            update={"cs": [float(np.median(chosen_c))] if chosen_c else cfg.reward_model.cs[:1]}
        )
        refit_eval = ray.put(OBDEvaluation(logged, target, edges, refit_cfg, cfg.estimators))
        refit_refs = [
            _paired_bootstrap.remote(refit_eval, None, n, s)
            for n, s in zip(split_draws(b.refit_draws, b.tasks), draw_seeds(b.seed + 1, b.tasks))
        ]
        refit_ci = {name: percentile_interval(v, b.level) for name, v in pooled(ray.get(refit_refs)).items()}
    row_ci = {name: percentile_interval(v, b.level) for name, v in pooled(ray.get(row_refs)).items()}
    truth = on_policy_truth(target, b.draws, b.seed + 2, b.level)
    result = assemble_result(
        truth, {n: t.value() for n, t in terms.items()}, row_ci, refit_ci, weight_diagnostics(inputs.weight)
    )
    result["reward_model"] = {
        "c_per_fold": chosen_c,
        "mean_prediction": float(q_hat.mean()),
        "refit_draws": b.refit_draws,
        "row_draws": b.draws,
    }
    result["target_policy"] = (
        f"empirical action frequency per position in {cfg.obd.time_blocks} time slice(s) of {target.source}"
    )
    result["time_blocks"] = cfg.obd.time_blocks
    result["data"] = {
        "source": "obd",
        "path": logged.source,
        "campaign": cfg.obd.campaign,
        "logging_policy": cfg.obd.logging_policy,
        "rounds": logged.n,
        "actions": logged.n_actions,
        "positions": logged.n_positions,
        "target_log": target.source,
        "target_rounds": target.n,
    }
    result["target"] = {
        "kind": "obd",
        "label": cfg.obd.target_policy,
        "policy": cfg.obd.target_policy,
        "time_blocks": cfg.obd.time_blocks,
        "distribution": result["target_policy"],
    }
    # how much the estimates depend on the week being sliced: the same estimators, one week-average policy
    week = OBDEvaluation(logged, target, time_edges([logged, target], 1), cfg.reward_model, cfg.estimators)
    result["week_average_target"] = week.estimates(np.arange(logged.n), np.arange(target.n), q_hat)
    return result


def synthetic_study(cfg: SyntheticOPEConfig, est: EstimatorConfig) -> dict:
    setup = synthetic_setup(cfg)
    setup_ref = ray.put(setup)
    refs = [_replicates.remote(setup_ref, cfg, est, chunk) for chunk in _chunks(replicate_seeds(cfg), cfg.tasks)]
    replicates = [r for part in ray.get(refs) for r in part]
    return {
        "replicates": len(replicates),
        "n_rounds": cfg.n_rounds,
        "truth": setup.truth,
        "summary": summarize(replicates, setup.truth),
    }


def _downsample(curve: np.ndarray) -> tuple[list[int], list[float]]:
    """(round numbers, values) at about CURVE_POINTS rounds, for the JSON and the plot."""
    idx = np.unique(np.linspace(0, curve.size - 1, min(CURVE_POINTS, curve.size)).astype(int))
    return (idx + 1).tolist(), curve[idx].tolist()


def submit_bandits(cfg: BanditConfig, logged_ref) -> tuple[dict, dict]:
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence([cfg.seed, 2]).spawn(cfg.seeds)]
    sims = {p: [_simulate.remote(cfg, p, s) for s in seeds] for p in POLICIES}
    replays = {}
    if logged_ref is not None:  # replay needs uniformly random logs: the OBD random log
        replays = {
            p: [_replay.remote(logged_ref, cfg, p, cfg.seed + i) for i in range(cfg.replay_seeds)] for p in POLICIES
        }
    return sims, replays


def collect_bandits(sims: dict, replays: dict) -> tuple[dict, dict]:
    summary = regret_summary({p: ray.get(refs) for p, refs in sims.items()})
    for s in summary.values():
        s["rounds"], s["curve"] = _downsample(s["curve"])
    replay_out = {}
    for p, refs in replays.items():
        # each replay walks the same rows with its own random draws: per-replay means, pooled click rate
        runs = ray.get(refs)
        matches, clicks = sum(r["matches"] for r in runs), sum(r["clicks"] for r in runs)
        replay_out[p] = {
            "matches": matches / len(runs),
            "clicks": clicks / len(runs),
            "value": clicks / matches if matches else float("nan"),
            "ci": [float(np.nanmean([r["ci"][i] for r in runs])) for i in (0, 1)],
            "seeds": len(runs),
            "per_seed": runs,
        }
    return summary, replay_out


def collect_pacing(cfg: PacingConfig, refs: list) -> dict:
    days = ray.get(refs)
    first = days[0]
    return {
        "summary": summarize_days(days),
        "budget": first["budget"],
        "budget_share": cfg.budget_share,
        "throttle_rate": first["throttle_rate"],
        "days": len(days),
        "first_day": first,
        "per_day": [
            {
                "optimum": d["optimum"],
                "auctions": d["auctions"],
                **{f"{n}_value_vs_optimum": b["value_vs_optimum"] for n, b in d["bidders"].items()},
                **{f"{n}_budget_used": b["budget_used"] for n, b in d["bidders"].items()},
            }
            for d in days
        ],
    }


def run(cfg: Config, run: RunDir) -> dict:
    run.ensure()
    ope = cfg.ope
    logged = target = logged_ref = None
    if ope.source == "obd":
        with StepTimer("load OBD logs"):
            logged, target = load_obd(ope)
        logged_ref = ray.put(logged)
    # independent studies first, so the cluster is busy while the folds and bootstraps run
    pacing_refs = (
        [_pacing_day.remote(ope.pacing, s) for s in day_seeds(ope.pacing)] if "pacing" in ope.studies else None
    )
    sims = replays = None
    if "bandits" in ope.studies:
        sims, replays = submit_bandits(ope.bandits, logged_ref)
    summary: dict = {}
    waits: dict[str, float] = {}
    if ope.source == "obd":
        with StepTimer("OBD off-policy estimates") as t:
            summary["obd"] = obd_study(ope, logged, target, logged_ref)
        waits["obd"] = t.seconds
    else:
        with StepTimer("off-policy estimates on your logs") as t:
            summary["logs"] = logs_study(ope)
        waits["logs"] = t.seconds
    if "synthetic" in ope.studies:
        with StepTimer("synthetic known-truth replicates") as t:
            summary["synthetic"] = synthetic_study(ope.synthetic, ope.estimators)
        waits["synthetic"] = t.seconds
    if sims is not None:
        with StepTimer("bandit simulations and replays") as t:
            summary["bandits"], replay_out = collect_bandits(sims, replays)
        if replay_out:
            summary["replay"] = replay_out
        waits["bandits"] = t.seconds
    if pacing_refs is not None:
        with StepTimer("pacing days") as t:
            summary["pacing"] = collect_pacing(ope.pacing, pacing_refs)
        waits["pacing"] = t.seconds
    # the studies overlap on the cluster: these are the driver's waits, the bandit and pacing
    # tasks mostly finish while the off-policy and synthetic studies are collected
    summary["wait_seconds"] = waits
    main_study = summary.get("obd") or summary["logs"]
    ref_value = main_study["truth"] if "truth" in main_study else main_study["logging_policy"]["value"]
    for name, e in main_study["estimators"].items():
        log.info(
            "%s %-9s %.5f  CI %.5f..%.5f  (%s %.5f)",
            "OBD" if "obd" in summary else "logs",
            name,
            e["estimate"],
            *e["ci"],
            "truth" if "truth" in main_study else "logging policy",
            ref_value,
        )
    run.write_json(artifacts.metrics("ope"), summary, step=STEP)
    run.write_json(artifacts.metrics("ope_headline"), headline(summary), step=STEP)
    plots = {
        "obd": ("ope_obd.png", obd_estimates_png),
        "logs": ("ope_logs.png", logs_estimates_png),
        "synthetic": ("ope_synthetic.png", lambda s: synthetic_png(s["summary"])),
        "bandits": ("bandit_regret.png", regret_png),
        "pacing": ("pacing_spend.png", lambda p: spend_png(p["first_day"])),
    }
    for key, (name, png) in plots.items():
        if key in summary:
            run.write_bytes(artifacts.report(name), png(summary[key]), step=STEP)
    run.write_bytes(artifacts.report("ope.md"), report_md(summary).encode(), step=STEP)
    return {
        "step": STEP,
        "headline": headline(summary),
        "report": run.path(artifacts.report("ope.md")),
        "wait_seconds": waits,
    }


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
