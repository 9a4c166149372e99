"""What an operator sets when deploying the app (the `args` of serve/config.yaml)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from reco.errors import ConfigError
from reco.schema import StrictModel


class ServeSettings(StrictModel):
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
    rank_in_ingress: bool = Field(
        False,
        description=(
            "Rank in the ingress replica (batched there) instead of the RankingDeployment: one hop fewer, "
            "2-3x the /v1/rank throughput on 2 cores, but ranking no longer scales or fails apart from the ingress."
        ),
    )
    retrieve_in_ingress: bool = Field(
        False,
        description=(
            "Retrieve /v1/recommend's candidates in the ingress replica instead of the RetrievalDeployment: "
            "with rank_in_ingress, a recommendation makes no handle call at all."
        ),
    )
    expand_in_ingress: bool = Field(
        False,
        description=(
            "Expand audiences in the ingress replica (one at a time, in a worker thread) instead of the "
            "ExpansionDeployment: no handle call (~5 ms of CPU a request on 2 cores), and HAProxy's leastconn "
            "balances expansions over the ingress replicas; expansion no longer scales apart from the ingress."
        ),
    )


def parse_settings(args: dict[str, Any] | None) -> ServeSettings:
    try:
        return ServeSettings.model_validate(args or {})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"invalid serve settings: {problems}") from None
