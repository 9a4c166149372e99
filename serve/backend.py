"""How the HTTP routes reach the work: deployment handles under Serve, plain objects elsewhere.

The routes (serve/gateway.py) call a backend's async methods. Under Ray Serve the backend holds
deployment handles; for the benchmark's floors (the same FastAPI app under plain uvicorn, or a
direct call) it holds the same service objects in-process. One set of routes, three ways to run
them, so the cost of each layer is measured on identical work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.handle import DeploymentHandle

from serve.services import ExpansionService, RankingService, RetrievalService

RETRIES = 2  # every call is a read, so a call caught on a dying replica is safe to send again


async def call(method, *args) -> Any:
    """``await method.remote(*args)``, sent again (to another replica) if its replica died under it."""
    for attempt in range(RETRIES + 1):
        try:
            return await method.remote(*args)
        except (ActorDiedError, ActorUnavailableError):
            if attempt == RETRIES:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


RankFn = Callable[[tuple[str, list[str], "dict | None"]], Awaitable[dict[str, Any]]]


class HandleBackend:
    """Calls the expansion, ranking and retrieval deployments through their handles.

    ``local_rank`` is the ingress's batched ranking (in its own process with ``rank_in_ingress``,
    else one handle call to the ranking deployment per batch); the ranking handle, where there is
    one, is only asked whether it is ready. ``local_retrieval`` (``retrieve_in_ingress``) and
    ``local_expansion`` (``expand_in_ingress``) replace the retrieval and expansion handles."""

    def __init__(
        self,
        expansion: DeploymentHandle | None,
        ranking: DeploymentHandle | None,
        retrieval: DeploymentHandle | None,
        local_rank: RankFn,
        local_retrieval: RetrievalService | None = None,
        local_expansion: ExpansionService | None = None,
    ):
        if (retrieval is None) == (local_retrieval is None):
            raise ValueError("give either the retrieval deployment's handle or a local retrieval service")
        if (expansion is None) == (local_expansion is None):
            raise ValueError("give either the expansion deployment's handle or a local expansion service")
        self.expansion, self.ranking, self.retrieval = expansion, ranking, retrieval
        self.local_rank, self.local_retrieval, self.local_expansion = local_rank, local_retrieval, local_expansion
        self._expanding = asyncio.Lock()

    async def expand(self, seed_ids: list[str], k: int, method: str) -> dict[str, Any]:
        if self.local_expansion is None:
            return await call(self.expansion.expand, seed_ids, k, method)
        # Tens of milliseconds of numpy: in a worker thread, so this replica's event loop keeps
        # answering (and batching /v1/rank) meanwhile; one at a time, so expansions do not take
        # turns at the GIL (HAProxy's leastconn spreads them over the ingress replicas).
        async with self._expanding:
            return await asyncio.to_thread(self.local_expansion.expand, seed_ids, k, method)

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> dict[str, Any]:
        if self.local_expansion is not None:  # a filter over a table in memory
            return self.local_expansion.audience_page(seed_list_id, offset, limit)
        return await call(self.expansion.audience_page, seed_list_id, offset, limit)

    async def rank(self, user_id: str, item_ids: list[str], context: dict | None) -> dict[str, Any]:
        return await self.local_rank((user_id, item_ids, context))

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> dict[str, Any]:
        if self.local_retrieval is not None:  # a few ms of numpy and faiss: cheaper inline than a hop
            return self.local_retrieval.candidates(user_id, n, recent, retriever)
        return await call(self.retrieval.candidates, user_id, n, recent, retriever)

    async def ready(self) -> None:
        handles = [h for h in (self.expansion, self.ranking, self.retrieval) if h is not None]
        await asyncio.wait_for(asyncio.gather(*(h.ready.remote() for h in handles)), timeout=5)


class LocalBackend:
    """The same services in this process (no Ray): the floors the benchmark compares against."""

    def __init__(self, expansion: ExpansionService, ranking: RankingService, retrieval: RetrievalService):
        self.expansion, self.ranking, self.retrieval = expansion, ranking, retrieval

    async def expand(self, seed_ids: list[str], k: int, method: str) -> dict[str, Any]:
        return self.expansion.expand(seed_ids, k, method)

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> dict[str, Any]:
        return self.expansion.audience_page(seed_list_id, offset, limit)

    async def rank(self, user_id: str, item_ids: list[str], context: dict | None) -> dict[str, Any]:
        return self.ranking.rank_many([(user_id, item_ids, context)])[0]

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> dict[str, Any]:
        return self.retrieval.candidates(user_id, n, recent, retriever)

    async def ready(self) -> None:
        return None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LocalBackend:
        return cls(ExpansionService(settings), RankingService(settings), RetrievalService(settings))
