"""Config of the budget-pacing simulation (reco.policy.pacing)."""

from __future__ import annotations

from pydantic import Field

from reco.schema import StrictModel


class PacingConfig(StrictModel):
    """A day of second-price auctions for one advertiser with a budget."""

    periods: int = Field(96, ge=2, description="Pacing periods in the horizon (96 = 15-minute periods of a day).")
    auctions_per_period: float = Field(
        400.0, gt=0, description="Mean auction opportunities per period (traffic follows a daily curve)."
    )
    day_volume_sigma: float = Field(
        0.2, ge=0, description="Log-scale spread of a day's total traffic around the average day."
    )
    traffic_swing: float = Field(0.6, ge=0, lt=1, description="Relative amplitude of the daily traffic curve.")
    value_per_click: float = Field(1.0, gt=0, description="What a click is worth to the advertiser.")
    ctr_alpha: float = Field(2.0, gt=0, description="Predicted CTRs ~ Beta(alpha, beta).")
    ctr_beta: float = Field(150.0, gt=0)
    competing_median: float = Field(0.012, gt=0, description="Median of the highest competing bid (log-normal).")
    competing_sigma: float = Field(0.6, gt=0, description="Log-scale spread of the competing bid.")
    competition_swing: float = Field(0.3, ge=0, lt=1, description="Relative daily swing of the competing bids' level.")
    budget_share: float = Field(
        0.3, gt=0, description="Budget as a share of what truthful unpaced bidding would spend in a day."
    )
    step_size: float = Field(
        0.3, gt=0, description="Dual step: lambda += step * (spend - target) / target each period."
    )
    initial_lambda: float = Field(0.0, ge=0, description="Starting Lagrange multiplier.")
    seeds: int = Field(5, ge=1, description="Simulated days (independent markets), spread over Ray tasks.")
    seed: int = 0
