"""What an operator sets when deploying the app (the `args` of serve/config.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from reco.errors import ConfigError
from reco.schema import StrictModel

Layout = Literal["compact", "composed"]


class ServeSettings(StrictModel):
    """Validated once, when the application is built, and handed to every deployment as this object."""

    run_dir: str = Field("runs/local", description="The run directory whose artifacts are served.")
    retriever: str | None = Field(
        None, description="Default candidate retriever for /v1/recommend; None: the run's retrieval.default."
    )
    max_seed_ids: int = Field(10_000, ge=1, description="Most seed ids one expansion request may carry.")
    max_audience_size: int = Field(100_000, ge=1)
    max_candidates: int = Field(1_000, ge=1, description="Most candidate items one /v1/rank request may carry.")
    max_k: int = Field(200, ge=1, description="Most items /v1/recommend returns.")
    candidates_per_k: int = Field(5, ge=1, description="Retrieved candidates per recommended item, for ranking.")
    max_body_bytes: int = Field(1_000_000, ge=1_024, description="Larger request bodies are refused with 413.")
    max_page_size: int = Field(1_000, ge=1)
    layout: Layout = Field(
        "composed",
        description=(
            "compact: the ingress replica ranks (batched), retrieves and expands itself, no handle call on any "
            "route (serve/config.yaml, one small machine); composed: ranking, retrieval and expansion in their own "
            "deployments behind handles, each scaling and failing apart (serve/config.composed.yaml, clusters)."
        ),
    )


def parse_settings(args: dict[str, Any] | ServeSettings | None) -> ServeSettings:
    if isinstance(args, ServeSettings):
        return args
    try:
        return ServeSettings.model_validate(args or {})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"invalid serve settings: {problems}") from None
