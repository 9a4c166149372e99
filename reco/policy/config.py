"""The ``ope`` config section: off-policy evaluation, bandits and budget pacing.

One field on ``reco.config.Config`` (``ope``) holds the policy domain; each part is defined
beside its code (``reco.policy.ope.config``, ``reco.policy.bandits.config``,
``reco.policy.pacing.config``) and gathered here. The checks that span parts live here too: a
target policy must suit the data source, and a bandit target must name a registered bandit
(``reco.policy.ope`` cannot look at the bandit registry, which imports it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.factory import POLICIES
from reco.policy.ope.config import (
    BootstrapConfig,
    EstimatorConfig,
    LogsConfig,
    OBDConfig,
    RewardModelConfig,
    SyntheticOPEConfig,
    TargetConfig,
)
from reco.policy.pacing.config import PacingConfig
from reco.schema import StrictModel

Study = Literal["synthetic", "bandits", "pacing"]


class PolicyConfig(StrictModel):
    """Off-policy evaluation, bandit simulation and replay, and pacing: one job (``ray_jobs.ope``)."""

    obd: OBDConfig = OBDConfig()
    logs: LogsConfig | None = Field(None, description="Your own logged feedback (read when source is logs).")
    target: TargetConfig = TargetConfig()
    reward_model: RewardModelConfig = RewardModelConfig()
    estimators: EstimatorConfig = EstimatorConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()
    synthetic: SyntheticOPEConfig = SyntheticOPEConfig()
    bandits: BanditConfig = BanditConfig()
    pacing: PacingConfig = PacingConfig()
    studies: list[Study] = Field(
        ["synthetic", "bandits", "pacing"],
        description="Studies run beside the off-policy estimate: the synthetic known-truth check, the bandit "
        "simulation (and, on OBD, replay), pacing. [] runs the estimate alone.",
    )
    source: Literal["obd", "logs"] = Field(
        "obd",
        validate_default=True,
        description="obd: the Open Bandit Dataset layout (ope.obd); logs: your own file (ope.logs).",
    )

    @field_validator("target")
    @classmethod
    def _known_bandit(cls, target: TargetConfig) -> TargetConfig:
        if target.kind == "bandit" and target.bandit.policy not in POLICIES:
            raise ValueError(
                f"ope.target.bandit.policy: unknown bandit policy {target.bandit.policy!r}; "
                f"expected one of {POLICIES.names()}"
            )
        return target

    @field_validator("source")
    @classmethod
    def _target_suits_source(cls, source: str, info: ValidationInfo) -> str:
        # a field that failed its own validation is absent from info.data: its error is reported already
        target = info.data.get("target")
        if source == "logs" and "logs" in info.data and info.data["logs"] is None:
            raise ValueError("ope.source is logs but there is no ope.logs section (path and columns of the log)")
        if target is None:
            return source
        if target.kind == "obd" and source != "obd":
            raise ValueError(
                "ope.target.kind obd (the BTS policy of the OBD bts logs) needs ope.source: obd; "
                "for your own logs use kind bandit or ranker"
            )
        if target.kind != "obd" and source != "logs":
            raise ValueError(
                f"ope.target.kind {target.kind} reads ope.logs: set ope.source: logs "
                "(configs/ope-logs.yaml reads the OBD sample's CSV that way)"
            )
        return source
