"""How the routes reach the work: one adapter per service, in this process or through a deployment handle.

The routes (serve/api.py) only see :class:`Services`: ``expand``, ``audience_page``, ``rank``,
``candidates`` and ``ready``, each returning a typed result (serve/schemas.py). Which adapter
stands behind each is chosen once, when the ingress starts (the settings' ``layout``):

- in process (:class:`LocalExpansion`, :class:`LocalRanking`, :class:`LocalRetrieval`): the
  service object itself; an expansion runs in a worker thread, one at a time;
- through a handle (:class:`RemoteExpansion`, ...): a call to the service's deployment, sent
  again to another replica if its replica died under it.

Ranking is batched on top of either (:class:`BatchedRanking`, Serve's ``@serve.batch``): the
concurrent requests of a replica become one ``rank_many`` call, one forward pass. The
benchmark's plain-uvicorn floor uses the in-process adapters without batching.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.handle import DeploymentHandle

from serve.schemas import AudienceRows, Candidates, Expansion, Ranking
from serve.services import ExpansionService, RankCall, RankingService, RetrievalService
from serve.settings import ServeSettings

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


# -- the ports the routes use -------------------------------------------------------------------


class ExpansionPort(Protocol):
    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion: ...
    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows: ...


class RankingPort(Protocol):
    async def rank_many(self, requests: list[RankCall]) -> list[Ranking]: ...


class RetrievalPort(Protocol):
    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates: ...


# -- in this process ----------------------------------------------------------------------------


class LocalExpansion:
    """Tens of milliseconds of numpy: in a worker thread, so the replica's event loop keeps
    answering (and batching /v1/rank) meanwhile; one at a time, so expansions do not take turns
    at the GIL (HAProxy's leastconn spreads them over the ingress replicas)."""

    def __init__(self, service: ExpansionService):
        self.service = service
        self._one_at_a_time = asyncio.Lock()

    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        async with self._one_at_a_time:
            return await asyncio.to_thread(self.service.expand, seed_ids, k, method)

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows:
        return self.service.audience_page(seed_list_id, offset, limit)  # a filter over a table in memory


class LocalRanking:
    def __init__(self, service: RankingService):
        self.service = service

    async def rank_many(self, requests: list[RankCall]) -> list[Ranking]:
        return self.service.rank_many(requests)


class LocalRetrieval:
    """A few ms of numpy and faiss: cheaper inline than a hop."""

    def __init__(self, service: RetrievalService):
        self.service = service

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates:
        return self.service.candidates(user_id, n, recent, retriever)


# -- through a deployment handle ----------------------------------------------------------------


@dataclass
class RemoteExpansion:
    handle: DeploymentHandle

    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        return await call(self.handle.expand, seed_ids, k, method)

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows:
        return await call(self.handle.audience_page, seed_list_id, offset, limit)


@dataclass
class RemoteRanking:
    handle: DeploymentHandle

    async def rank_many(self, requests: list[RankCall]) -> list[Ranking]:
        return await call(self.handle.rank_many, requests)


@dataclass
class RemoteRetrieval:
    handle: DeploymentHandle

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates:
        return await call(self.handle.candidates, user_id, n, recent, retriever)


# -- what the routes hold -----------------------------------------------------------------------


class BatchedRanking:
    """Concurrent rank requests of this replica gathered into one ``rank_many`` call (inside Serve only)."""

    def __init__(self, port: RankingPort):
        self.port = port

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0005, max_concurrent_batches=8)
    async def _batch(self, requests: list[RankCall]) -> list[Ranking]:
        return await self.port.rank_many(requests)

    async def rank(self, user_id: str, item_ids: list[str], context: dict | None) -> Ranking:
        return await self._batch((user_id, item_ids, context))


class UnbatchedRanking:
    """One request, one call: the benchmark's plain-uvicorn floor, outside Serve."""

    def __init__(self, port: RankingPort):
        self.port = port

    async def rank(self, user_id: str, item_ids: list[str], context: dict | None) -> Ranking:
        return (await self.port.rank_many([(user_id, item_ids, context)]))[0]


@dataclass
class Services:
    """Everything the routes call, each behind the adapter chosen at start."""

    expansion: ExpansionPort
    ranking: BatchedRanking | UnbatchedRanking
    retrieval: RetrievalPort
    handles: tuple[DeploymentHandle, ...] = ()  # the deployments readiness waits for

    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        return await self.expansion.expand(seed_ids, k, method)

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows:
        return await self.expansion.audience_page(seed_list_id, offset, limit)

    async def rank(self, user_id: str, item_ids: list[str], context: dict | None) -> Ranking:
        return await self.ranking.rank(user_id, item_ids, context)

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates:
        return await self.retrieval.candidates(user_id, n, recent, retriever)

    async def ready(self) -> None:
        await asyncio.wait_for(asyncio.gather(*(h.ready.remote() for h in self.handles)), timeout=5)


def in_process(settings: ServeSettings) -> Services:
    """Every service in this process, unbatched: plain uvicorn, without Ray."""
    return Services(
        LocalExpansion(ExpansionService(settings)),
        UnbatchedRanking(LocalRanking(RankingService(settings))),
        LocalRetrieval(RetrievalService(settings)),
    )


def for_ingress(
    settings: ServeSettings,
    expansion: DeploymentHandle | None,
    ranking: DeploymentHandle | None,
    retrieval: DeploymentHandle | None,
) -> Services:
    """The ingress replica's services: in process for the compact layout, else the deployments' handles."""
    if settings.layout == "compact":
        return Services(
            LocalExpansion(ExpansionService(settings)),
            BatchedRanking(LocalRanking(RankingService(settings))),
            LocalRetrieval(RetrievalService(settings)),
        )
    if expansion is None or ranking is None or retrieval is None:
        raise ValueError("the composed layout needs the expansion, ranking and retrieval deployments' handles")
    return Services(
        RemoteExpansion(expansion),
        BatchedRanking(RemoteRanking(ranking)),
        RemoteRetrieval(retrieval),
        handles=(expansion, ranking, retrieval),
    )
