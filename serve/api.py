"""The HTTP API: versioned JSON over audience expansion, ranking and recommendation.

:func:`create_app` builds the FastAPI application over validated settings and the services the
routes call (serve/adapters.py). Each route checks its request (typed models plus the operator's
limits), makes one call per service, and shapes the typed result into its answer: route ->
service -> reco, nothing calls back. /v1/recommend chains retrieval for candidates and ranking
for calibrated probabilities. Under Serve the ingress deployment (serve/deployments.py) builds
its app here at replica start; the benchmark runs the same app on plain uvicorn.

Every route but /healthz and /readyz (and the docs, the explorer's page and its static files)
needs an API key with the route's scope (serve/auth.py); the app does not start without a keys
file. Expansions obey the privacy floors (``min_seed_ids``, ``min_audience_size``), never return
a seed, and are written to the audit log (serve/audit.py).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic_core import to_json

from reco import __version__
from serve import schemas as s
from serve.adapters import Services
from serve.audit import AuditLog, distinct_ids
from serve.auth import Caller, KeyStore, load_keys, require
from serve.explorer import ExplorerService
from serve.explorer_routes import router as explorer_router
from serve.http_errors import (
    OutOfRange,
    document_errors,
    error,
    install,
    request_id_of,
    responses,
    serve_sets_request_id,
)
from serve.jobs_routes import audience_jobs_router
from serve.settings import ServeSettings

# Routes whose bodies the BodyLimit middleware leaves alone: POST /v1/audience-jobs streams an
# uploaded seed-list file and enforces its own, larger limit.
BODY_LIMIT_EXEMPT = ("/v1/audience-jobs",)
ExpandCaller = Annotated[Caller, Depends(require("expand"))]


def _limit(name: str, value: int, limit: int) -> None:
    if value > limit:
        raise OutOfRange(f"{name} is {value}, more than the limit of {limit}")


def _json(body: dict[str, Any]) -> Response:
    """The answer, written straight to JSON bytes (pydantic-core, in Rust).

    Returning a Response skips FastAPI's re-validation of the route's response model, which
    cost more than the ranking itself for 100 items (docs/serving.md, "Under load"). The response models
    still document each route; the fuzz test validates answers against them.
    """
    return Response(content=to_json(body), media_type="application/json")


def _members(user_ids: list[str], scores: list[float], ranks, sources: list[str]) -> list[dict[str, Any]]:
    return [
        {"user_id": u, "score": sc, "rank": r, "source": src} for u, sc, r, src in zip(user_ids, scores, ranks, sources)
    ]


def create_app(
    settings: ServeSettings, services: Services, explorer: ExplorerService, *, keys: KeyStore | None = None
) -> FastAPI:
    """The application over ``services``, limited by ``settings``; the explorer's page and JSON beside it.

    ``keys``: the API keys, else loaded from ``settings.keys_file`` (a ConfigError without one).
    The audit log's writer runs while the app does (its lifespan), so Serve's replica shutdown
    and uvicorn's both write its last rows.
    """
    keys = keys or load_keys(settings.keys_file)
    audit = AuditLog(
        settings.audit_uri, flush_rows=settings.audit_flush_rows, flush_seconds=settings.audit_flush_seconds
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        async with audit.running():
            yield

    app = FastAPI(
        title="reco-ray",
        version=__version__,
        description=(
            "Audience expansion and ranking: seed users in, users who act alike out; items ranked for a user. "
            'Send an API key as `Authorization: Bearer <key>`; errors are `{"error": {"code", "message", '
            '"request_id"}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.settings, app.state.explorer, app.state.keys, app.state.audit = settings, explorer, keys, audit
    install(
        app,
        settings.max_body_bytes,
        exempt=BODY_LIMIT_EXEMPT,
        access=settings.access_log,
        echo_id=not serve_sets_request_id(),
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses=responses(503))
    async def readyz(request: Request):
        try:
            await services.ready()
        except Exception as e:
            return error(request, 503, f"not ready: {type(e).__name__}")
        return {"ready": True, "run_dir": settings.run_dir}

    @app.post("/v1/audiences/expand", response_model=s.ExpandResponse, responses=responses(400))
    async def expand(req: s.ExpandRequest, request: Request, caller: ExpandCaller) -> Response:
        """An audience for a seed list. Privacy floors: at least ``min_seed_ids`` distinct seed ids,
        that many of them known users, and an ``audience_size`` of at least ``min_audience_size``
        (422 below either); the seeds themselves are never in the audience."""
        _limit("seed_user_ids", len(req.seed_user_ids), settings.max_seed_ids)
        _limit("audience_size", req.audience_size, settings.max_audience_size)
        seeds = distinct_ids(req.seed_user_ids)
        if len(seeds) < settings.min_seed_ids:
            raise OutOfRange(
                f"seed_user_ids has {len(seeds)} distinct id(s); at least {settings.min_seed_ids} are needed "
                "(min_seed_ids, a privacy floor)"
            )
        if req.audience_size < settings.min_audience_size:
            raise OutOfRange(
                f"audience_size is {req.audience_size}; the smallest audience served is {settings.min_audience_size} "
                "(min_audience_size, a privacy floor)"
            )
        t0 = time.perf_counter()
        r = await services.expand(req.seed_user_ids, req.audience_size, req.method)
        if r.seeds_used < settings.min_seed_ids:
            raise OutOfRange(
                f"only {r.seeds_used} of the seed ids are known users; at least {settings.min_seed_ids} are needed "
                "(min_seed_ids, a privacy floor)"
            )
        keep = _not_seeds(r.user_ids, set(seeds))
        user_ids = [r.user_ids[i] for i in keep] if keep is not None else r.user_ids
        scores = [r.scores[i] for i in keep] if keep is not None else r.scores
        sources = [r.sources[i] for i in keep] if keep is not None else r.sources
        audit.record(
            request_id=request_id_of(request.scope),
            key_name=caller.name,
            route="/v1/audiences/expand",
            method=req.method,
            seed_ids=seeds,
            seeds_known=r.seeds_used,
            audience_size_asked=req.audience_size,
            audience_size_returned=len(user_ids),
        )
        return _json(
            {
                "method": req.method,
                "audience": _members(user_ids, scores, range(1, len(user_ids) + 1), sources),
                "seeds_used": r.seeds_used,
                "seeds_unknown": r.seeds_unknown,
                "unknown_seed_ids": r.unknown_seed_ids,
                "duplicate_seed_ids": r.duplicate_seed_ids,
                "elapsed_ms": round((time.perf_counter() - t0) * 1000, 2),
            }
        )

    @app.get("/v1/audiences/{seed_list_id:path}", response_model=s.AudiencePage, responses=responses(404))
    async def audience(
        seed_list_id: str,
        request: Request,
        caller: ExpandCaller,
        offset: int = Query(0, ge=0),
        limit: int | None = Query(None, ge=1, description="Members per page; default 100, or max_page_size if less."),
    ) -> Response:
        """A page of an audience the batch job (ray_jobs.expand) wrote, in rank order."""
        limit = limit or min(100, settings.max_page_size)
        _limit("limit", limit, settings.max_page_size)
        r = await services.audience_page(seed_list_id, offset, limit)
        members = _members(r.user_ids, r.scores, r.ranks, r.sources)
        audit.record(
            request_id=request_id_of(request.scope),
            key_name=caller.name,
            route="/v1/audiences/{seed_list_id}",
            seed_list_id=seed_list_id,
            audience_size_asked=limit,
            audience_size_returned=len(members),
        )
        return _json({"seed_list_id": seed_list_id, "total": r.total, "offset": offset, "audience": members})

    @app.post("/v1/rank", response_model=s.RankResponse, dependencies=[Depends(require("rank"))])
    async def rank(req: s.RankRequest) -> Response:
        _limit("item_ids", len(req.item_ids), settings.max_candidates)
        r = await services.rank(req.user_id, req.item_ids, req.context)
        return _json(
            {
                "user_id": req.user_id,
                "user_known": r.user_known,
                "unknown_item_ids": r.unknown_item_ids,
                "items": [{"item_id": i, "probability": p} for i, p in zip(r.item_ids, r.probabilities)],
            }
        )

    @app.post(
        "/v1/recommend",
        response_model=s.RecommendResponse,
        responses=responses(400, 404),
        dependencies=[Depends(require("recommend"))],
    )
    async def recommend(req: s.RecommendRequest) -> Response:
        _limit("k", req.k, settings.max_k)
        c = await services.candidates(
            req.user_id, req.k * settings.candidates_per_k, req.recent_item_ids, req.retriever
        )
        items: list[dict[str, Any]] = []
        if c.item_ids:
            r = await services.rank(req.user_id, c.item_ids, None)
            retrieval_score = dict(zip(c.item_ids, c.scores))
            name = dict(zip(c.item_ids, c.names))
            items = [
                {"item_id": i, "name": name[i], "probability": p, "retrieval_score": retrieval_score[i]}
                for i, p in zip(r.item_ids[: req.k], r.probabilities[: req.k])
            ]
        return _json(
            {
                "user_id": req.user_id,
                "retriever": c.retriever,
                "fallback": c.fallback_reason is not None,
                "fallback_reason": c.fallback_reason,
                "items": items,
            }
        )

    app.include_router(audience_jobs_router(settings))
    # The explorer's page and /v1/explorer/... after the API's routes: routes are matched in
    # order, so the API's requests do not try the explorer's first.
    app.include_router(explorer_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(FastAPI.openapi(app), app)
        return app.openapi_schema

    app.openapi = openapi
    return app


def _not_seeds(user_ids: list[str], seeds: set[str]) -> list[int] | None:
    """Positions of the members that are not seeds, or None when none is (the expander already
    leaves seeds out; this holds it at the API's edge too)."""
    if not any(u in seeds for u in user_ids):
        return None
    return [i for i, u in enumerate(user_ids) if u not in seeds]
