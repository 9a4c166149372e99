"""Off-policy evaluation's settings: the Open Bandit Dataset, the reward model, estimators, bootstrap.

They are parts of the ``ope`` config section, which ``reco.policy.config`` gathers with the
bandit and pacing parts.
"""

from __future__ import annotations

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
