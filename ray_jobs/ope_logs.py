"""The off-policy study on your own logs (``ope.source: logs``): a target's value from a CSV / Parquet log.

The target (``ope.target``) is a bandit of reco.policy.bandits fitted on the log's earliest rows,
or the trained ranker of a run directory, mapped to the log in reco.policy.ope.ranker_target.
Its per-row distribution is computed in chunks of rows (Ray tasks), then the reward model's
folds and the bootstrap draws are tasks too, as in the OBD study (ray_jobs/ope.py).
"""

from __future__ import annotations

import numpy as np
import ray

from ray_jobs.common import StepTimer
from ray_jobs.ope_tasks import cross_fit, pooled
from reco.policy.bandits.factory import make_policy
from reco.policy.config import PolicyConfig
from reco.policy.ope.bootstrap import bootstrap_values, draw_seeds, percentile_interval, split_draws
from reco.policy.ope.config import RankerTargetConfig
from reco.policy.ope.estimators import EstimatorTerms, ope_inputs
from reco.policy.ope.logged_data import LoggedFeedback
from reco.policy.ope.logged_feedback import FeedbackLog, log_columns, log_location, read_feedback
from reco.policy.ope.logs_evaluation import LogsEvaluation, assemble_logs_result, logging_value, refit_bootstrap
from reco.policy.ope.obd_target import weight_diagnostics
from reco.policy.ope.target_policies import bandit_action_dist, bandit_method, feature_dim, fit_bandit, time_split


@ray.remote(num_cpus=1)
def _bandit_dist(policy, log_: LoggedFeedback, rows: np.ndarray, samples: int, seed: list[int]) -> np.ndarray:
    return bandit_action_dist(policy, log_, rows, samples, np.random.SeedSequence(seed))


@ray.remote(num_cpus=1)
def _ranker_dist(ranker, mapping, cfg: RankerTargetConfig, fb: FeedbackLog, seed: list[int]) -> np.ndarray:
    from reco.policy.ope.ranker_target import ranker_action_dist  # torch loads only where a ranker is the target

    return ranker_action_dist(ranker, mapping, fb, cfg, np.random.SeedSequence(seed))


@ray.remote(num_cpus=1)
def _row_bootstrap(terms: dict[str, EstimatorTerms], draws: int, seed: int) -> dict[str, np.ndarray]:
    return bootstrap_values(terms, draws, seed)


@ray.remote(num_cpus=1)
def _refit_bootstrap(evaluation: LogsEvaluation, draws: int, seed: int) -> dict[str, np.ndarray]:
    return refit_bootstrap(evaluation, draws, seed)


def _row_chunks(n: int, tasks: int) -> list[np.ndarray]:
    return [c for c in np.array_split(np.arange(n), max(1, min(tasks, n))) if c.size]


def _chunk_seeds(seed: int, chunks: int) -> list[list[int]]:
    return [[seed, i] for i in range(chunks)]


def bandit_target(ope: PolicyConfig) -> tuple[FeedbackLog, np.ndarray, dict]:
    """(evaluated rows, the bandit's distribution on them, its description): fitted on the earliest rows."""
    tc = ope.target.bandit
    fb = read_feedback(ope.logs)
    fit, evaluated = time_split(fb.time_order(), tc.fit_share, fb.log.source)
    policy = make_policy(tc.policy, fb.log.n_actions, feature_dim(fb.log), ope.bandits)
    with StepTimer(f"fit {tc.policy} on the earliest {fit.size:,} rows"):
        fit_bandit(policy, fb.log, fit)
    ev = fb.subset(evaluated)
    log_ref, policy_ref = ray.put(ev.log), ray.put(policy)
    chunks = _row_chunks(ev.n, ope.target.tasks)
    refs = [
        _bandit_dist.remote(policy_ref, log_ref, rows, tc.samples, seed)
        for rows, seed in zip(chunks, _chunk_seeds(tc.seed, len(chunks)))
    ]
    dist = np.concatenate(ray.get(refs))
    settings = {
        "thompson": {"ridge": ope.bandits.ridge, "posterior_scale": ope.bandits.posterior_scale},
        "epsilon_greedy": {"epsilon": ope.bandits.epsilon, "ridge": ope.bandits.ridge},
        "bernoulli_thompson": {"prior": "Beta(1, 1)"},
    }.get(tc.policy, {})
    ts = fb.log.timestamp
    target = {
        "kind": "bandit",
        "label": f"{tc.policy} bandit",
        "policy": tc.policy,
        "settings": settings,
        "fit_share": tc.fit_share,
        "fit_rows": int(fit.size),
        "evaluated_rows": int(evaluated.size),
        "fit_until": float(ts[fit].max()) if ts is not None and fit.size else None,
        "ordered_by": fb.description["ordered_by"],
        "features": f"intercept + {len(fb.context_columns)} context column(s)",
        "distribution": bandit_method(policy),
        "samples": tc.samples if "estimated" in bandit_method(policy) else None,
    }
    return ev, dist, target


def ranker_target(ope: PolicyConfig) -> tuple[FeedbackLog, np.ndarray, dict]:
    """(every row, the ranker's distribution on them, its description)."""
    from reco.policy.ope import ranker_target as rt  # torch loads only where a ranker is the target

    tc = ope.target.ranker
    with StepTimer(f"load the ranker of {tc.run_dir}"):
        ranker = rt.load_ranker(tc.run_dir)
    mapping = rt.map_fields(ranker, tc, log_columns(ope.logs), ope.logs.columns.user, log_location(ope.logs).uri)
    fb = read_feedback(ope.logs, keep=mapping.log_columns())
    known = rt.check_items(ranker, mapping, fb)
    ranker_ref = ray.put(ranker)
    chunks = _row_chunks(fb.n, ope.target.tasks)
    refs = [
        _ranker_dist.remote(ranker_ref, mapping, tc, fb.subset(rows), seed)
        for rows, seed in zip(chunks, _chunk_seeds(tc.seed, len(chunks)))
    ]
    dist = np.concatenate(ray.get(refs))
    target = rt.describe(ranker, mapping, tc, known, fb.log.n_actions)
    target["label"] = f"ranker ({ranker.model_cfg.name}, {tc.mode})"
    target["evaluated_rows"] = fb.n
    return fb, dist, target


def logs_study(ope: PolicyConfig) -> dict:
    """Estimates and intervals of the configured target on your own logs, beside the logging policy's value."""
    with StepTimer(f"{ope.target.kind} target on {ope.logs.path}"):
        fb, dist, target = bandit_target(ope) if ope.target.kind == "bandit" else ranker_target(ope)
    log_ = fb.log
    binary = fb.description["binary_reward"]
    evaluation = LogsEvaluation(log_, dist, ope.reward_model, ope.estimators, model_based=binary)
    q_hat, chosen_c = None, []
    if binary:
        q_hat, chosen_c = cross_fit(ray.put(log_), log_.n, log_.n_actions, ope.reward_model)
    terms = evaluation.terms(q_hat)
    b = ope.bootstrap
    terms_ref = ray.put(terms)
    row_refs = [
        _row_bootstrap.remote(terms_ref, n, s)
        for n, s in zip(split_draws(b.draws, b.tasks), draw_seeds(b.seed, b.tasks))
    ]
    refit_ci = None
    if binary and b.refit_draws:
        refit_cfg = ope.reward_model.model_copy(
            update={"cs": [float(np.median(chosen_c))] if chosen_c else ope.reward_model.cs[:1]}
        )
        refit_eval = ray.put(LogsEvaluation(log_, dist, refit_cfg, ope.estimators))
        refit_refs = [
            _refit_bootstrap.remote(refit_eval, n, s)
            for n, s in zip(split_draws(b.refit_draws, b.tasks), draw_seeds(b.seed + 1, b.tasks))
        ]
        refit_ci = {name: percentile_interval(v, b.level) for name, v in pooled(ray.get(refit_refs)).items()}
    row_ci = {name: percentile_interval(v, b.level) for name, v in pooled(ray.get(row_refs)).items()}
    data = {**fb.description, "evaluated_rounds": log_.n}
    weight = ope_inputs(log_, dist).weight
    diagnostics = weight_diagnostics(weight)
    # IPW and DR lean on the rewarded rows the target favours: few of them and the intervals say too little
    diagnostics["rewarded_rows"] = int((log_.reward != 0).sum())
    diagnostics["rewarded_upweighted"] = int(((weight > 1) & (log_.reward != 0)).sum())
    result = assemble_logs_result(
        {n: t.value() for n, t in terms.items()},
        row_ci,
        refit_ci,
        diagnostics,
        logging_value(log_, b.draws, b.seed + 2, b.level),
        data,
        target,
    )
    result["reward_model"] = (
        {"c_per_fold": chosen_c, "mean_prediction": float(q_hat.mean()), "refit_draws": b.refit_draws}
        if binary
        else {"skipped": "rewards are not all 0 or 1; the reward model is a click model, so DM and DR are left out"}
    )
    result["row_draws"] = b.draws
    result["level"] = b.level
    return result
