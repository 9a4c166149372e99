"""The Ray Serve deployments: each service in its replicas; ranking batches concurrent calls.

A replaced replica (a redeploy) finishes its requests first: expansions can take seconds on a
busy machine, so the drain waits up to 60 s. Replicas ask for no whole CPU (``num_cpus: 0``) so the application fits on two cores beside
Ray's own processes; replica counts, autoscaling and limits come from serve/config.yaml.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from serve.services import ExpansionService, RankingService, RetrievalService


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=8, graceful_shutdown_timeout_s=60)
class ExpansionDeployment(ExpansionService):
    def ready(self) -> bool:
        return True


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class RankingDeployment(RankingService):
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0005)
    async def rank(self, requests: list[tuple[str, list[str], dict | None]]) -> list[dict[str, Any]]:
        return self.rank_many(requests)

    def ready(self) -> bool:
        return True


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
class RetrievalDeployment(RetrievalService):
    def ready(self) -> bool:
        return True
