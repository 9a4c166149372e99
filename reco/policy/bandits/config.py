"""Config of the bandit experiments: the online simulation and the replay on logged data."""

from __future__ import annotations

from pydantic import Field

from reco.schema import StrictModel


class BanditConfig(StrictModel):
    """Thompson sampling against epsilon-greedy and uniform random (reco.policy.bandits)."""

    horizon: int = Field(5_000, ge=10, description="Rounds of the online simulation.")
    seeds: int = Field(4, ge=1, description="Independent simulations per policy (spread over Ray tasks).")
    n_actions: int = Field(10, ge=2, description="Arms of the synthetic environment.")
    dim: int = Field(5, ge=1, description="Context dimensions of the synthetic environment.")
    signal: float = Field(
        1.5, gt=0, description="Scale of the per-arm context weights (how much the best arm depends on the context)."
    )
    base_logit: float = Field(-1.5, description="Mean reward logit: sigmoid(-1.5) is about 0.18.")
    epsilon: float = Field(0.1, ge=0, le=1, description="Exploration share of epsilon-greedy.")
    ridge: float = Field(1.0, gt=0, description="Prior precision of the linear models (Thompson and epsilon-greedy).")
    posterior_scale: float = Field(
        0.5, gt=0, description="Scale of the Gaussian posterior the linear Thompson policy samples from."
    )
    replay_seeds: int = Field(4, ge=1, description="Replays of each policy over the logged data, one per seed.")
    replay_rows: int = Field(0, ge=0, description="Replay only the first N logged rows (0: all of them).")
    seed: int = 0
