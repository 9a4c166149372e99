"""One typed schema for every job's config.

A config is a YAML file validated by :class:`Config`. Unknown keys and wrong types are errors
that name the key (``embedding.dimm: unknown key``), so a typo never silently falls back to a
default. Any value can be overridden on the command line with ``--set section.key=value``; the
value is parsed as YAML, so ``--set embedding.epochs=3`` is an int and ``--set
ingest.exclude_topics=[50]`` a list.
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from reco.data.config import DataConfig, IngestConfig
from reco.embedding.config import EmbeddingConfig, ExportConfig, IndexConfig
from reco.errors import ConfigError
from reco.expansion.config import ExpansionConfig
from reco.faults import FaultConfig
from reco.policy.config import PolicyConfig
from reco.rank.config import RankingConfig
from reco.retrieval.config import RetrievalConfig
from reco.schema import StrictModel, is_input_path
from reco.storage import resolve_local


class RayConfig(StrictModel):
    address: str | None = Field(None, description="Ray address; None starts a local instance (or joins RAY_ADDRESS).")
    num_cpus: int | None = Field(2, ge=1, description="CPUs of a local instance; ignored when joining a cluster.")
    object_store_mb: int | None = Field(None, ge=64, description="Object store size of a local instance.")
    shared_disk: bool = Field(
        False,
        description="Local paths (run_dir, data.path) are on a disk every node mounts (NFS): allow them on a "
        "cluster of several nodes, where otherwise each node would read and write its own disk.",
    )


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
    ope: PolicyConfig = PolicyConfig()
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


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in typing.get_args(annotation) if (m := _model_of(a)) is not None), None)


def resolve_input_paths(raw: dict[str, Any], model: type[BaseModel], base: Path) -> dict[str, Any]:
    """``raw`` with every relative local :data:`~reco.schema.InputPath` made absolute against ``base``."""
    out = dict(raw)
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is None:
            continue  # an unknown key: validation names it
        if isinstance(value, str) and is_input_path(field):
            out[key] = resolve_local(value, base)
        elif isinstance(value, dict) and (sub := _model_of(field.annotation)) is not None:
            out[key] = resolve_input_paths(value, sub, base)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config. Raises ConfigError with a one-line message.

    Relative input paths in the file are relative to the file's folder; those in ``overrides``
    (``--set data.path=...``) and the defaults are relative to the working directory.
    """
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
        raw = resolve_input_paths(loaded, Config, p.resolve().parent)
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
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set embedding.epochs=3 (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser
