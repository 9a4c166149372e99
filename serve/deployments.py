"""The Ray Serve deployments: the HTTP ingress, and each service in its own replicas.

A replaced replica (a redeploy) finishes its requests first: expansions can take seconds on a
busy machine, so the drain waits up to 60 s. Replicas ask for no whole CPU (``num_cpus: 0``) so
the application fits on two cores beside Ray's own processes; replica counts, resources,
autoscaling and limits come from serve/config.yaml (or serve/config.composed.yaml).
"""

from __future__ import annotations

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.adapters import for_ingress
from serve.api import create_app
from serve.auth import load_keys
from serve.explorer import ExplorerService
from serve.schemas import Expansion
from serve.services import ExpansionService, RankingService, RetrievalService
from serve.settings import ServeSettings


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64, graceful_shutdown_timeout_s=60)
@serve.ingress()
class Gateway:
    """The ingress: builds the app (serve/api.py) at replica start over the services its layout
    names, in this replica (compact) or behind the other deployments' handles (composed). The
    keys file is read first, so a replica without one fails before it loads a run. The app's
    lifespan (the audit log's writer) is run by Serve: started before the first request, and
    stopped, its last rows written, when the replica shuts down."""

    def __init__(
        self,
        expansion: DeploymentHandle | None,
        ranking: DeploymentHandle | None,
        retrieval: DeploymentHandle | None,
        settings: ServeSettings,
    ):
        keys = load_keys(settings.keys_file)
        services = for_ingress(settings, expansion, ranking, retrieval)
        self._app = create_app(settings, services, ExplorerService(settings), keys=keys)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=8, graceful_shutdown_timeout_s=60)
class ExpansionDeployment(ExpansionService):
    def ready(self) -> bool:
        return True

    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        """On the replica's event loop, one expansion at a time. A plain method would run in
        Serve's thread pool, up to max_ongoing_requests at once, and threads taking turns at the
        GIL between small numpy operations served ~25% fewer expansions a second (bench.serve)."""
        return ExpansionService.expand(self, seed_ids, k, method)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class RankingDeployment(RankingService):
    """Ranks batches the ingress gathered (``rank_many``: one call per batch, one forward pass)."""

    def ready(self) -> bool:
        return True


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
class RetrievalDeployment(RetrievalService):
    def ready(self) -> bool:
        return True
