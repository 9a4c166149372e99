"""The ``ope`` config section: off-policy evaluation, bandits and budget pacing.

One field on ``reco.config.Config`` (``ope``) holds the policy domain; each part is defined
beside its code (``reco.policy.ope.config``, ``reco.policy.bandits.config``,
``reco.policy.pacing.config``) and gathered here.
"""

from __future__ import annotations

from reco.policy.bandits.config import BanditConfig
from reco.policy.ope.config import BootstrapConfig, EstimatorConfig, OBDConfig, RewardModelConfig, SyntheticOPEConfig
from reco.policy.pacing.config import PacingConfig
from reco.schema import StrictModel


class PolicyConfig(StrictModel):
    """Off-policy evaluation, bandit simulation and replay, and pacing: one job (``ray_jobs.ope``)."""

    obd: OBDConfig = OBDConfig()
    reward_model: RewardModelConfig = RewardModelConfig()
    estimators: EstimatorConfig = EstimatorConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()
    synthetic: SyntheticOPEConfig = SyntheticOPEConfig()
    bandits: BanditConfig = BanditConfig()
    pacing: PacingConfig = PacingConfig()
