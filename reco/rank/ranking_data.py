"""What every ranking data view produces: raw-value frames of the three splits, their fields and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from reco.rank.features import FeatureSpec


@dataclass
class RankingData:
    """Frames of raw values; ``users`` / ``items`` hold one row of side features per known id."""

    name: str
    spec: FeatureSpec
    labels: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    protocol: Literal["ctr", "leave_one_out"] = "ctr"
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
