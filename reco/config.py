"""One typed schema for every job's config.

A config is a YAML file validated by :class:`Config`. Unknown keys and wrong types are errors
that name the key (``embedding.dimm: unknown key``), so a typo never silently falls back to a
default. Any value can be overridden on the command line with ``--set section.key=value``; the
value is parsed as YAML, so ``--set embedding.epochs=3`` is an int and ``--set
ingest.exclude_topics=[50]`` a list.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from reco.errors import ConfigError
from reco.expansion.config import ExpansionConfig
from reco.faults import FaultConfig
from reco.ope.config import OPEConfig
from reco.rank.config import RankingConfig
from reco.retrieval.config import RetrievalConfig
from reco.schema import StrictModel


class RayConfig(StrictModel):
    address: str | None = Field(None, description="Ray address; None starts a local instance (or joins RAY_ADDRESS).")
    num_cpus: int | None = Field(2, ge=1, description="CPUs of a local instance; ignored when joining a cluster.")
    object_store_mb: int | None = Field(None, ge=64, description="Object store size of a local instance.")


class SyntheticConfig(StrictModel):
    """Planted-community data: see reco.synthetic."""

    n_users: int = Field(20_000, ge=10)
    n_topics: int = Field(1_000, ge=10)
    n_communities: int = Field(20, ge=2)
    max_communities_per_user: int = Field(3, ge=1, le=5)
    mean_activity: float = Field(25.0, gt=1, description="Mean interactions per user (heavy-tailed).")
    noise: float = Field(0.1, ge=0, le=1, description="Share of interactions on random topics.")
    users_per_chunk: int = Field(50_000, ge=100, description="Users generated per Ray task.")
    seed: int = 0

    @model_validator(mode="after")
    def _enough_topics(self) -> "SyntheticConfig":
        if self.n_topics < self.n_communities:
            raise ValueError("n_topics must be at least n_communities")
        return self


class ColumnMapping(StrictModel):
    """Which columns of a generic file hold what. weight and ts are optional."""

    user: str
    topic: str
    weight: str | None = None
    ts: str | None = None


class DataConfig(StrictModel):
    format: Literal["synthetic", "movielens", "lastfm", "generic"] = "synthetic"
    path: str | None = Field(None, description="Input file or directory (not used by synthetic).")
    columns: ColumnMapping | None = Field(None, description="Column mapping, generic format only.")
    file_type: Literal["csv", "tsv", "parquet"] | None = Field(None, description="Generic only; from the extension if unset.")
    delimiter: str | None = Field(None, description="Generic csv/tsv only; ',' or '\\t' by default.")
    topic_names_path: str | None = Field(None, description="Optional file of topic names (u.item, artists.dat).")
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _needs(self) -> "DataConfig":
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


class EmbeddingConfig(StrictModel):
    """StarSpace-style training (reco.starspace)."""

    dim: int = Field(64, ge=2)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.05, gt=0)
    optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad"
    loss: Literal["hinge", "softmax"] = "hinge"
    margin: float = Field(0.2, ge=0, description="Hinge margin on cosine similarity.")
    temperature: float = Field(0.1, gt=0, description="Softmax loss temperature.")
    negatives: int = Field(200, ge=1, description="Negatives sampled per batch, shared by its examples.")
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform", description="uniform beat popularity-smoothed sampling on Last.fm and synthetic (see README).")
    popularity_power: float = Field(0.5, ge=0, le=1, description="Popularity sampling: count ** power.")
    samples_per_user: int = Field(4, ge=1, description="(input, target) pairs drawn per user per epoch.")
    max_history: int = Field(200, ge=1, description="Topics pooled per training example, sampled if longer.")
    weighted_pooling: bool = Field(False, description="Pool topics weighted by log1p(weight) instead of a plain mean.")
    num_workers: int = Field(2, ge=1, description="Ray Train workers (DDP on CPU).")
    cpus_per_worker: float = Field(0.5, gt=0)
    patience: int = Field(3, ge=1, description="Epochs without validation improvement before stopping.")
    max_failures: int = Field(1, ge=0, description="Worker failures survived by restoring the latest checkpoint.")
    val_max_users: int = Field(5_000, ge=1, description="Validation users scored per epoch.")
    seed: int = 0


class ExportConfig(StrictModel):
    batch_size: int = Field(4096, ge=1)
    actors: int = Field(1, ge=1, description="Actor pool size holding the model.")
    cpus_per_actor: float = Field(0.5, gt=0)


class IndexConfig(StrictModel):
    kind: Literal["flat", "ivf", "hnsw"] = "flat"
    nlist: int = Field(0, ge=0, description="IVF lists; 0 picks about 4*sqrt(n).")
    nprobe: int = Field(16, ge=1)
    hnsw_m: int = Field(32, ge=4)
    ef_search: int = Field(128, ge=1)
    ef_construction: int = Field(80, ge=1)
    recall_queries: int = Field(1000, ge=1, description="Queries used to measure recall@10 against exact search.")


class Config(StrictModel):
    run_dir: str = Field("runs/local", description="Local path or pyarrow.fs URI (s3://, gs://).")
    ray: RayConfig = RayConfig()
    data: DataConfig = DataConfig()
    ingest: IngestConfig = IngestConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    export: ExportConfig = ExportConfig()
    index: IndexConfig = IndexConfig()
    expansion: ExpansionConfig = ExpansionConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    ope: OPEConfig = OPEConfig()
    ranking: RankingConfig = RankingConfig()
    faults: FaultConfig = FaultConfig()


def _format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown key")
        else:
            parts.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return f"invalid config {source}: " + "; ".join(parts)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3). The value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e.problem})") from None
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for p in path[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {p} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config. Raises ConfigError with a one-line message."""
    raw: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a mapping of sections, got {type(loaded).__name__}")
        raw = loaded
    raw = apply_overrides(raw, overrides or [])
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None


def job_arg_parser(description: str) -> argparse.ArgumentParser:
    """The command line every job shares: --config FILE [--set key=value ...]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="configs/local.yaml", help="YAML config (default: configs/local.yaml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set embedding.epochs=3 (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser
