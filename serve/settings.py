"""What an operator sets when deploying the app (the `args` of serve/config.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from reco.errors import ConfigError
from reco.schema import StrictModel
from serve.audience_jobs import AudienceJobSettings

Layout = Literal["compact", "composed"]


class ServeSettings(StrictModel):
    """Validated once, when the application is built, and handed to every deployment as this object."""

    run_dir: str = Field("runs/local", description="The run directory whose artifacts are served.")
    retriever: str | None = Field(
        None, description="Default candidate retriever for /v1/recommend; None: the run's retrieval.default."
    )
    max_seed_ids: int = Field(10_000, ge=1, description="Most seed ids one expansion request may carry.")
    max_audience_size: int = Field(100_000, ge=1)
    min_seed_ids: int = Field(
        10,
        ge=1,
        description="Privacy floor: fewest distinct seed ids an expansion takes, and fewest of them that must be "
        "known users (an audience grown from a handful of people says too much about those people).",
    )
    min_audience_size: int = Field(
        100, ge=1, description="Privacy floor: smallest audience_size an expansion may ask for."
    )
    max_candidates: int = Field(1_000, ge=1, description="Most candidate items one /v1/rank request may carry.")
    max_k: int = Field(200, ge=1, description="Most items /v1/recommend returns.")
    candidates_per_k: int = Field(5, ge=1, description="Retrieved candidates per recommended item, for ranking.")
    max_body_bytes: int = Field(1_000_000, ge=1_024, description="Larger request bodies are refused with 413.")
    max_page_size: int = Field(1_000, ge=1)
    keys_file: str | None = Field(
        None,
        description="The API keys file (YAML or JSON, hashes only; a local path or a URI): required, the app "
        "refuses to start without it. `python -m serve.keys new` makes keys; a Kubernetes Secret under KubeRay.",
    )
    audit_dir: str | None = Field(
        None, description="Where the audit log's Parquet files go (a local path or a URI); None: <run_dir>/audit."
    )
    audit_flush_seconds: float = Field(5.0, gt=0, description="The audit log is written at least this often.")
    audit_flush_rows: int = Field(1_000, ge=1, description="... or as soon as this many rows wait.")
    access_log: bool = Field(
        True, description="One log line per request (request id, key name, method, route, status, ms)."
    )
    jobs: AudienceJobSettings = Field(default_factory=AudienceJobSettings)
    layout: Layout = Field(
        "composed",
        description=(
            "compact: the ingress replica ranks (batched), retrieves and expands itself, no handle call on any "
            "route (serve/config.yaml, one small machine); composed: ranking, retrieval and expansion in their own "
            "deployments behind handles, each scaling and failing apart (serve/config.composed.yaml, clusters)."
        ),
    )

    @model_validator(mode="after")
    def _floors_below_limits(self) -> ServeSettings:
        if self.min_seed_ids > self.max_seed_ids:
            raise ValueError(f"min_seed_ids ({self.min_seed_ids}) is above max_seed_ids ({self.max_seed_ids})")
        if self.min_audience_size > self.max_audience_size:
            raise ValueError(
                f"min_audience_size ({self.min_audience_size}) is above max_audience_size ({self.max_audience_size})"
            )
        return self

    @property
    def audit_uri(self) -> str:
        return self.audit_dir or f"{self.run_dir.rstrip('/')}/audit"


def parse_settings(args: dict[str, Any] | ServeSettings | None) -> ServeSettings:
    if isinstance(args, ServeSettings):
        return args
    try:
        return ServeSettings.model_validate(args or {})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, x['loc']))}: {x['msg']}" if x["loc"] else x["msg"].removeprefix("Value error, ")
            for x in e.errors()
        )
        raise ConfigError(f"invalid serve settings: {problems}") from None
