"""The HTTP routes: versioned JSON over audience expansion, ranking and recommendation.

Each route validates its request (typed models plus the operator's limits), asks the backend
(serve/backend.py: deployment handles under Serve, in-process services elsewhere) to do the
work, and shapes the answer. /v1/recommend chains retrieval for candidates and ranking for
calibrated probabilities. ``Gateway`` is the Serve ingress deployment over this app.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json
from ray import serve
from ray.serve.handle import DeploymentHandle

from reco import __version__
from serve import schemas as s
from serve.backend import HandleBackend, call
from serve.explorer import ExplorerService
from serve.explorer_routes import router as explorer_router
from serve.http_errors import TooLarge, install
from serve.services import ExpansionService, RankingService, RetrievalService
from serve.settings import ServeSettings

app = FastAPI(
    title="reco-ray",
    version=__version__,
    description="Audience expansion and ranking: seed users in, users who act alike out; items ranked for a user.",
)
app.state.settings = ServeSettings()
install(app, lambda: app.state.settings.max_body_bytes)


def _limit(name: str, value: int, limit: int) -> None:
    if value > limit:
        raise TooLarge(f"{name} is {value}, more than the limit of {limit}")


def _settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def _json(body: dict[str, Any]) -> Response:
    """The answer, written straight to JSON bytes (pydantic-core, in Rust).

    Returning a Response skips FastAPI's re-validation of the route's response model, which
    cost more than the ranking itself for 100 items (docs/serving.md, "Under load"). The response models
    still document each route; the fuzz test validates answers against them.
    """
    return Response(content=to_json(body), media_type="application/json")


def _members(user_ids: list[str], scores: list[float], ranks: range, sources: list[str]) -> list[dict[str, Any]]:
    return [
        {"user_id": u, "score": sc, "rank": r, "source": src} for u, sc, r, src in zip(user_ids, scores, ranks, sources)
    ]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz", responses={503: {"model": s.Error}})
async def readyz(request: Request):
    try:
        await request.app.state.backend.ready()
    except Exception as e:
        return JSONResponse(status_code=503, content={"error": f"not ready: {type(e).__name__}"})
    return {"ready": True, "run_dir": _settings(request).run_dir}


@app.post(
    "/v1/audiences/expand",
    response_model=s.ExpandResponse,
    responses={400: {"model": s.Error}, 413: {"model": s.Error}},
)
async def expand(req: s.ExpandRequest, request: Request) -> Response:
    cfg = _settings(request)
    _limit("seed_user_ids", len(req.seed_user_ids), cfg.max_seed_ids)
    _limit("audience_size", req.audience_size, cfg.max_audience_size)
    t0 = time.perf_counter()
    r = await request.app.state.backend.expand(req.seed_user_ids, req.audience_size, req.method)
    st = r["stats"]
    members = _members(r["user_ids"], r["scores"], range(1, len(r["user_ids"]) + 1), r["sources"])
    return _json(
        {
            "method": req.method,
            "audience": members,
            "seeds_used": st["seeds_used"],
            "seeds_unknown": st["seeds_unknown"],
            "unknown_seed_ids": st["unknown_seed_ids"],
            "duplicate_seed_ids": st["duplicates"],
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 2),
        }
    )


@app.get("/v1/audiences/{seed_list_id:path}", response_model=s.AudiencePage, responses={404: {"model": s.Error}})
async def audience(
    seed_list_id: str, request: Request, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1)
) -> Response:
    _limit("limit", limit, _settings(request).max_page_size)
    r = await request.app.state.backend.audience_page(seed_list_id, offset, limit)
    members = [{k: x[k] for k in ("user_id", "score", "rank", "source")} for x in r["rows"]]
    return _json({"seed_list_id": seed_list_id, "total": r["total"], "offset": offset, "audience": members})


@app.post("/v1/rank", response_model=s.RankResponse, responses={413: {"model": s.Error}})
async def rank(req: s.RankRequest, request: Request) -> Response:
    _limit("item_ids", len(req.item_ids), _settings(request).max_candidates)
    r = await request.app.state.backend.rank(req.user_id, req.item_ids, req.context)
    return _json(
        {
            "user_id": req.user_id,
            "user_known": r["user_known"],
            "unknown_item_ids": r["unknown_item_ids"],
            "items": [{"item_id": i, "probability": p} for i, p in zip(r["item_ids"], r["probabilities"])],
        }
    )


@app.post(
    "/v1/recommend", response_model=s.RecommendResponse, responses={400: {"model": s.Error}, 413: {"model": s.Error}}
)
async def recommend(req: s.RecommendRequest, request: Request) -> Response:
    cfg, backend = _settings(request), request.app.state.backend
    _limit("k", req.k, cfg.max_k)
    c = await backend.candidates(req.user_id, req.k * cfg.candidates_per_k, req.recent_item_ids, req.retriever)
    items: list[dict[str, Any]] = []
    if c["item_ids"]:
        r = await backend.rank(req.user_id, c["item_ids"], None)
        retrieval_score = dict(zip(c["item_ids"], c["scores"]))
        name = dict(zip(c["item_ids"], c["names"]))
        items = [
            {"item_id": i, "name": name[i], "probability": p, "retrieval_score": retrieval_score[i]}
            for i, p in zip(r["item_ids"][: req.k], r["probabilities"][: req.k])
        ]
    return _json(
        {
            "user_id": req.user_id,
            "retriever": c["retriever"],
            "fallback": c["fallback_reason"] is not None,
            "fallback_reason": c["fallback_reason"],
            "items": items,
        }
    )


# The audience explorer page and /v1/explorer/... (serve/explorer_routes.py), after the API's
# routes: routes are matched in order, so the API's requests do not try the explorer's first.
app.include_router(explorer_router)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64, graceful_shutdown_timeout_s=60)
@serve.ingress(app)
class Gateway:
    """The ingress: the app above, its backend the deployments' handles.

    With ``rank_in_ingress`` there is no ranking handle: this replica loads the ranker itself and
    batches concurrent /v1/rank and /v1/recommend calls the way RankingDeployment does. With
    ``retrieve_in_ingress`` there is no retrieval handle: it retrieves candidates itself; with
    ``expand_in_ingress``, no expansion handle: it expands audiences itself.
    """

    def __init__(
        self,
        expansion: DeploymentHandle | None,
        ranking: DeploymentHandle | None,
        retrieval: DeploymentHandle | None,
        settings: dict[str, Any],
    ):
        app.state.settings = ServeSettings.model_validate(settings)
        self.ranking = RankingService(settings) if ranking is None else None
        self.ranking_handle = ranking
        app.state.backend = HandleBackend(
            expansion,
            ranking,
            retrieval,
            local_rank=self.rank,
            local_retrieval=RetrievalService(settings) if retrieval is None else None,
            local_expansion=ExpansionService(settings) if expansion is None else None,
        )
        app.state.explorer = ExplorerService(app.state.settings)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0005, max_concurrent_batches=8)
    async def rank(self, requests: list[tuple[str, list[str], dict | None]]) -> list[dict[str, Any]]:
        """Concurrent rank requests batched here: ranked in this replica (``rank_in_ingress``) or
        sent to the ranking deployment as one handle call, so a batch pays the hop once."""
        if self.ranking is not None:
            return self.ranking.rank_many(requests)
        return await call(self.ranking_handle.rank_many, requests)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve this module's app, whose state __init__ just set; @serve.ingress holds a frozen copy."""
        return app
