"""Off-policy evaluation's settings: the data (the Open Bandit Dataset or your own logs), the target
policy, the reward model, estimators, bootstrap.

They are parts of the ``ope`` config section, which ``reco.policy.config`` gathers with the
bandit and pacing parts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reco.schema import InputPath, StrictModel


class OBDConfig(StrictModel):
    """The Open Bandit Dataset: estimate the BTS policy's value from the uniform-random logs."""

    path: InputPath = Field(
        "../shared/data/obd", description="Folder holding <policy>/<campaign>/<campaign>.csv and item_context.csv."
    )
    campaign: str = Field("all", description="Campaign folder (all, men, women).")
    logging_policy: str = Field("random", description="Logs the estimators read (uniform random over the items).")
    target_policy: str = Field(
        "bts", description="Policy evaluated; its own logs give its action frequencies and the truth."
    )
    time_blocks: int = Field(
        7,
        ge=1,
        description="Equal time slices of the logs' week; the target policy's action frequencies are estimated "
        "per slice, as BTS was updated during the week (1: one week-average policy).",
    )


class RewardModelConfig(StrictModel):
    """The cross-fitted click model behind DM, DR and switch-DR (reco.policy.ope.reward_model)."""

    n_folds: int = Field(
        3, ge=2, description="Cross-fitting folds: each row is predicted by a model that never saw it."
    )
    cs: list[float] = Field(
        [0.01, 0.1, 1.0],
        min_length=1,
        description="Inverse L2 strengths of the logistic regression; several pick one by inner CV log loss.",
    )
    interactions: bool = Field(
        False, description="Add context x action-indicator features (a separate linear model per action)."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _positive_cs(self) -> RewardModelConfig:
        if any(c <= 0 for c in self.cs):
            raise ValueError("reward_model.cs must all be > 0")
        return self


class EstimatorConfig(StrictModel):
    clip: float | None = Field(
        None, gt=0, description="Cap on importance weights for IPW, SNIPW and DR (None: no clipping)."
    )
    switch_tau: float = Field(
        4.0, gt=0, description="Switch-DR: rows with importance weight above this use the reward model alone."
    )


class BootstrapConfig(StrictModel):
    draws: int = Field(2_000, ge=10, description="Bootstrap resamples of both logs' rows (reward model held fixed).")
    refit_draws: int = Field(
        200,
        ge=0,
        description="Resamples that also re-cross-fit the reward model: the DM/DR/switch-DR intervals "
        "(0: use the fixed-model ones).",
    )
    level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the percentile interval.")
    tasks: int = Field(4, ge=1, description="Ray tasks the draws are spread over.")
    seed: int = 0


class SyntheticOPEConfig(StrictModel):
    """The known-truth check: repeated logs from a synthetic contextual bandit."""

    n_actions: int = Field(8, ge=2)
    dim: int = Field(5, ge=1)
    signal: float = Field(1.0, gt=0, description="Scale of the per-action context weights.")
    base_logit: float = Field(-1.0, description="Mean reward logit.")
    n_rounds: int = Field(2_000, ge=50, description="Rows per logged replicate.")
    replicates: int = Field(100, ge=2, description="Independent logs, spread over Ray tasks.")
    tasks: int = Field(4, ge=1, description="Ray tasks the replicates are spread over.")
    logging_temperature: float = Field(
        1.0, gt=0, description="Softmax temperature of the logging policy (higher: closer to uniform)."
    )
    truth_contexts: int = Field(500_000, ge=1_000, description="Contexts averaged for each target policy's true value.")
    bootstrap_draws: int = Field(200, ge=10, description="Bootstrap draws per replicate (interval coverage).")
    reward_model: RewardModelConfig = Field(
        RewardModelConfig(interactions=True, cs=[1.0]),
        description="Well specified here (one logistic model per action), so DR's variance reduction shows.",
    )
    seed: int = 0


# -- your own logs ------------------------------------------------------------------------------


class LogColumnsConfig(StrictModel):
    """Which columns of a logged-feedback file hold what (reco.policy.ope.logged_feedback)."""

    action: str = Field("action", description="The action the logging policy took (item id, arm name or index).")
    reward: str = Field("reward", description="The observed reward (numeric; DM and DR need 0/1 rewards).")
    propensity: str = Field(
        "propensity", description="The logging policy's probability of the logged action, in (0, 1]."
    )
    position: str | None = Field(None, description="Slot the action was shown in (multi-slot displays).")
    context: list[str] = Field(
        default_factory=list,
        description="Numeric features of the round (names or shell patterns such as 'x_*'): the reward model's "
        "and the bandit targets' context.",
    )
    user: str | None = Field(None, description="User id of the round (the ranker target looks users up by it).")
    item: str | None = Field(
        None, description="Item id of the logged action when the action column is not the item id itself."
    )
    timestamp: str | None = Field(
        None, description="Time of the round (seconds or a date string): orders the rows; else file order."
    )


class LogsConfig(StrictModel):
    """A logged-feedback file of your own: CSV or Parquet, local or a URI, with declared columns."""

    path: InputPath = Field(..., description="A .csv / .parquet file or a folder of Parquet files (local, s3://...).")
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="auto: by extension (.csv, .csv.gz, .parquet, .pq); a folder is Parquet."
    )
    columns: LogColumnsConfig = LogColumnsConfig()
    position_base: int = Field(0, ge=0, description="Value of the top position in the position column (0 or 1).")
    where: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Keep only rows whose column equals the value (a campaign, a slice)."
    )
    actions: list[str] | None = Field(
        None,
        description="Every action the policies choose from (as text); default: the distinct logged actions.",
    )


class BanditTargetConfig(StrictModel):
    """A bandit of reco.policy.bandits as the target: fitted on the earliest rows, evaluated on the rest."""

    policy: str = Field("epsilon_greedy", description="Registry name (reco.policy.bandits.factory.POLICIES).")
    fit_share: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Earliest share of the rows the bandit learns from (every logged action, reward); the "
        "estimators read only the later rows. 0: the bandit's prior policy on every row.",
    )
    samples: int = Field(200, ge=10, description="Draws per row for policies with random scores (Thompson sampling).")
    seed: int = 0


class RankerTargetConfig(StrictModel):
    """The trained ranker of a run directory as the target: its calibrated scores over the candidate actions."""

    run_dir: str | None = Field(None, description="Run directory (local or URI) holding models/ranker.pt.")
    task: str | None = Field(None, description="Task whose probabilities are used (default: the first).")
    mode: Literal["softmax", "greedy"] = Field(
        "softmax",
        description="softmax: pi(a) proportional to p(a)^(1/temperature); greedy: the best-scored action.",
    )
    temperature: float = Field(1.0, gt=0, description="softmax: 1 = in proportion to the click probability.")
    epsilon: float = Field(0.0, ge=0, le=1, description="Share of uniform exploration mixed into the distribution.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Ranker context field -> log column; unmapped context fields are read from a log column "
        "of the same name.",
    )
    allow_unknown: bool = Field(
        False,
        description="Score with unmapped user / context fields as unknown (as serving does for a request "
        "without them) instead of failing.",
    )
    samples: int = Field(200, ge=10, description="softmax at positions below the top: Plackett-Luce draws per row.")
    seed: int = 0


class TargetConfig(StrictModel):
    """Which policy is evaluated: the OBD BTS policy, a bandit, or a trained ranker."""

    kind: Literal["obd", "bandit", "ranker"] = Field(
        "obd", description="obd: BTS from the OBD bts logs (OBD source only); bandit; ranker."
    )
    bandit: BanditTargetConfig = BanditTargetConfig()
    ranker: RankerTargetConfig = RankerTargetConfig()
    tasks: int = Field(2, ge=1, description="Ray tasks the target's per-row distribution is computed in.")

    @model_validator(mode="after")
    def _ranker_needs_a_run(self) -> TargetConfig:
        if self.kind == "ranker" and not self.ranker.run_dir:
            raise ValueError("ope.target.ranker.run_dir is required for kind: ranker")
        return self
