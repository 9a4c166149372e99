"""The ``data`` and ``ingest`` config sections: where interactions come from and how ingest splits them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reco.schema import InputPath, StrictModel


class ColumnMapping(StrictModel):
    """Which columns of a generic file hold what. weight and ts are optional."""

    user: str
    topic: str
    weight: str | None = None
    ts: str | None = None


class SyntheticConfig(StrictModel):
    """Planted-community data: see reco.data.synthetic."""

    n_users: int = Field(20_000, ge=10)
    n_topics: int = Field(1_000, ge=10)
    n_communities: int = Field(20, ge=2)
    max_communities_per_user: int = Field(3, ge=1, le=5)
    mean_activity: float = Field(25.0, gt=1, description="Mean interactions per user (heavy-tailed).")
    noise: float = Field(0.1, ge=0, le=1, description="Share of interactions on random topics.")
    users_per_chunk: int = Field(50_000, ge=100, description="Users generated per Ray task.")
    seed: int = 0

    @model_validator(mode="after")
    def _enough_topics(self) -> SyntheticConfig:
        if self.n_topics < self.n_communities:
            raise ValueError("n_topics must be at least n_communities")
        return self


class DataConfig(StrictModel):
    format: Literal["synthetic", "movielens", "lastfm", "generic"] = "synthetic"
    path: InputPath | None = Field(None, description="Input file or directory, local or a URI (not used by synthetic).")
    columns: ColumnMapping | None = Field(None, description="Column mapping, generic format only.")
    file_type: Literal["csv", "tsv", "parquet"] | None = Field(
        None, description="Generic only; from the extension if unset."
    )
    delimiter: str | None = Field(None, description="Generic csv/tsv only; ',' or '\\t' by default.")
    topic_names_path: InputPath | None = Field(None, description="Optional file of topic names (u.item, artists.dat).")
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _needs(self) -> DataConfig:
        if self.format != "synthetic" and not self.path:
            raise ValueError(f"data.path is required for format '{self.format}'")
        if self.format == "generic" and self.columns is None:
            raise ValueError("data.columns (user, topic[, weight, ts]) is required for format 'generic'")
        return self


class IngestConfig(StrictModel):
    num_shards: int = Field(8, ge=1, description="Histories are sharded by user hash into this many files.")
    holdout_per_user: int = Field(1, ge=0, description="Interactions per user held out for validation.")
    holdout: Literal["latest", "random"] = "latest"
    test_users: float = Field(0, ge=0, description="Users held out entirely (count if >= 1, else a fraction).")
    min_weight: float | None = Field(None, description="Drop interactions with a lower weight.")
    exclude_topics: list[str] = Field(default_factory=list, description="Raw topic ids removed before training.")
    seed: int = 0
