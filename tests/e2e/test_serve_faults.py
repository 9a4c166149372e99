"""A ranking replica killed during a stream of HTTP requests: no request fails, the replica is replaced."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from reco.run_dir import RunDir

pytestmark = pytest.mark.ray
APP = "reco-faults"


def _ranking_replicas() -> list:
    from ray.util.state import list_actors

    return list_actors(filters=[("class_name", "=", f"ServeReplica:{APP}:RankingDeployment"), ("state", "=", "ALIVE")])


def test_ranking_replica_killed_during_a_stream_fails_no_request(tiny_run, serve_app):
    import ray

    from serve.deployments import ExpansionDeployment, RankingDeployment, RetrievalDeployment
    from serve.gateway import Gateway

    run_dir, _ = tiny_run
    settings = {"run_dir": run_dir}
    app = Gateway.bind(ExpansionDeployment.bind(settings), RankingDeployment.options(num_replicas=2).bind(settings),
                       RetrievalDeployment.bind(settings), settings)
    with serve_app(app, APP) as base:
        deadline = time.time() + 120
        while time.time() < deadline and len(_ranking_replicas()) < 2:
            time.sleep(0.5)
        before = {a.actor_id: a for a in _ranking_replicas()}
        assert len(before) == 2, "two ranking replicas never came up"

        run = RunDir(run_dir)
        user = run.read_table("vocab/users.parquet").column("raw_id")[0].as_py()
        items = run.read_table("vocab/topics.parquet").column("raw_id").to_pylist()[:50]
        statuses: list[int] = []
        stop = threading.Event()

        def stream() -> None:
            with requests.Session() as s:
                while not stop.is_set():
                    statuses.append(s.post(f"{base}/v1/rank", json={"user_id": user, "item_ids": items}, timeout=30).status_code)

        clients = [threading.Thread(target=stream) for _ in range(4)]
        for c in clients:
            c.start()
        time.sleep(2)
        victim = next(iter(before.values()))
        ray.kill(ray.get_actor(victim.name, namespace="serve"), no_restart=True)
        killed_at = len(statuses)
        deadline = time.time() + 120
        while time.time() < deadline:
            alive = {a.actor_id for a in _ranking_replicas()}
            if len(alive) == 2 and victim.actor_id not in alive:
                break
            time.sleep(0.5)
        time.sleep(2)  # keep streaming through the new replica's first requests
        stop.set()
        for c in clients:
            c.join()
        alive = {a.actor_id for a in _ranking_replicas()}
        assert victim.actor_id not in alive and len(alive) == 2, "the killed replica was not replaced"
        assert len(statuses) > killed_at + 20, "too few requests after the kill to show anything"
        assert set(statuses) == {200}, json.dumps({s: statuses.count(s) for s in set(statuses)})
