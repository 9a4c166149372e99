"""Typed requests and responses of every route (FastAPI validates and documents them), and the
typed results the services hand the routes (plain dataclasses: cheap to build and to send
through a deployment handle, where a model per audience member would cost more than the work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# "ensemble": the run's representations fused by the weights its validation chose (docs/expansion.md);
# a run without several representations and ensemble weights answers 400.
Method = Literal["blend", "density", "classifier", "centroid", "logreg", "ensemble"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpandRequest(Request):
    seed_user_ids: list[str] = Field(..., min_length=1, description="Raw user ids, as the advertiser knows them.")
    audience_size: int = Field(1_000, ge=1)
    method: Method = "blend"


class AudienceMember(BaseModel):
    user_id: str
    score: float
    rank: int
    source: str


class ExpandResponse(BaseModel):
    method: str
    audience: list[AudienceMember]
    seeds_used: int
    seeds_unknown: int
    unknown_seed_ids: list[str] = Field(description="Up to 100 of the ids that are not known users.")
    duplicate_seed_ids: int
    elapsed_ms: float


class AudiencePage(BaseModel):
    seed_list_id: str
    total: int
    offset: int
    audience: list[AudienceMember]


class RankRequest(Request):
    user_id: str
    item_ids: list[str] = Field(..., min_length=1)
    context: dict[str, Any] | None = None


class RankedItem(BaseModel):
    item_id: str
    probability: float


class RankResponse(BaseModel):
    user_id: str
    user_known: bool
    items: list[RankedItem]
    unknown_item_ids: list[str]


class RecommendRequest(Request):
    user_id: str
    k: int = Field(10, ge=1)
    recent_item_ids: list[str] = Field(
        default_factory=list, max_length=20, description="The user's latest actions (short-term interest), if any."
    )
    retriever: str | None = None


class RecommendedItem(BaseModel):
    item_id: str
    name: str | None = None
    probability: float
    retrieval_score: float


class RecommendResponse(BaseModel):
    user_id: str
    retriever: str
    fallback: bool = Field(description="True when the user is unknown and popular items are returned instead.")
    fallback_reason: str | None = None
    items: list[RecommendedItem]


ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "invalid_request",
    "too_many_requests",
    "internal",
    "unavailable",
]


class ErrorDetail(BaseModel):
    code: ErrorCode = Field(description="What kind of error, stable for clients to branch on (docs/serving.md).")
    message: str = Field(description="One line, for a person: what is wrong and, where it helps, the limit.")
    request_id: str = Field(description="The request's id, also in the X-Request-ID header and the access log.")


class Error(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


# -- what the services return to the routes ----------------------------------------------------


@dataclass(frozen=True)
class Expansion:
    """One seed list's audience, best first, and what became of the seeds."""

    user_ids: list[str]
    scores: list[float]
    sources: list[str]
    seeds_used: int
    seeds_unknown: int
    unknown_seed_ids: list[str]
    duplicate_seed_ids: int


@dataclass(frozen=True)
class AudienceRows:
    """A page of a batch audience, in rank order, and the audience's full size."""

    total: int
    user_ids: list[str]
    scores: list[float]
    ranks: list[int]
    sources: list[str]


@dataclass(frozen=True)
class Ranking:
    """One request's items sorted by calibrated probability."""

    user_known: bool
    item_ids: list[str]
    probabilities: list[float]
    unknown_item_ids: list[str]


@dataclass(frozen=True)
class Candidates:
    """A retriever's candidate items for one user, best first."""

    item_ids: list[str]
    names: list[str | None]
    scores: list[float]
    retriever: str
    fallback_reason: str | None
