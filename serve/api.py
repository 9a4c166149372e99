"""The HTTP API: versioned JSON over audience expansion, ranking and recommendation.

:func:`create_app` builds the FastAPI application over validated settings and the services the
routes call (serve/adapters.py). Each route checks its request (typed models plus the operator's
limits), makes one call per service, and shapes the typed result into its answer: route ->
service -> reco, nothing calls back. /v1/recommend chains retrieval for candidates and ranking
for calibrated probabilities. Under Serve the ingress deployment (serve/deployments.py) builds
its app here at replica start; the benchmark runs the same app on plain uvicorn.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from reco import __version__
from serve import schemas as s
from serve.adapters import Services
from serve.explorer import ExplorerService
from serve.explorer_routes import router as explorer_router
from serve.http_errors import TooLarge, install
from serve.settings import ServeSettings


def _limit(name: str, value: int, limit: int) -> None:
    if value > limit:
        raise TooLarge(f"{name} is {value}, more than the limit of {limit}")


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


def create_app(settings: ServeSettings, services: Services, explorer: ExplorerService) -> FastAPI:
    """The application over ``services``, limited by ``settings``; the explorer's page and JSON beside it."""
    app = FastAPI(
        title="reco-ray",
        version=__version__,
        description="Audience expansion and ranking: seed users in, users who act alike out; items ranked for a user.",
    )
    app.state.settings, app.state.explorer = settings, explorer
    install(app, settings.max_body_bytes)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": s.Error}})
    async def readyz():
        try:
            await services.ready()
        except Exception as e:
            return JSONResponse(status_code=503, content={"error": f"not ready: {type(e).__name__}"})
        return {"ready": True, "run_dir": settings.run_dir}

    @app.post(
        "/v1/audiences/expand",
        response_model=s.ExpandResponse,
        responses={400: {"model": s.Error}, 413: {"model": s.Error}},
    )
    async def expand(req: s.ExpandRequest) -> Response:
        _limit("seed_user_ids", len(req.seed_user_ids), settings.max_seed_ids)
        _limit("audience_size", req.audience_size, settings.max_audience_size)
        t0 = time.perf_counter()
        r = await services.expand(req.seed_user_ids, req.audience_size, req.method)
        return _json(
            {
                "method": req.method,
                "audience": _members(r.user_ids, r.scores, range(1, len(r.user_ids) + 1), r.sources),
                "seeds_used": r.seeds_used,
                "seeds_unknown": r.seeds_unknown,
                "unknown_seed_ids": r.unknown_seed_ids,
                "duplicate_seed_ids": r.duplicate_seed_ids,
                "elapsed_ms": round((time.perf_counter() - t0) * 1000, 2),
            }
        )

    @app.get("/v1/audiences/{seed_list_id:path}", response_model=s.AudiencePage, responses={404: {"model": s.Error}})
    async def audience(seed_list_id: str, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1)) -> Response:
        _limit("limit", limit, settings.max_page_size)
        r = await services.audience_page(seed_list_id, offset, limit)
        members = _members(r.user_ids, r.scores, r.ranks, r.sources)
        return _json({"seed_list_id": seed_list_id, "total": r.total, "offset": offset, "audience": members})

    @app.post("/v1/rank", response_model=s.RankResponse, responses={413: {"model": s.Error}})
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
        responses={400: {"model": s.Error}, 413: {"model": s.Error}},
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

    # The explorer's page and /v1/explorer/... after the API's routes: routes are matched in
    # order, so the API's requests do not try the explorer's first.
    app.include_router(explorer_router)
    return app
