"""Helpers of the end-to-end tests: a free port, a Serve application run until ready, and the
one application over the tiny run that the HTTP and browser tests share (starting one costs
half a minute on two cores)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_app(ray_session):
    """``with serve_app(app, name, prefix) as base:`` runs a Serve application on a free port until ready.

    Raises if /readyz is not 200 within ``timeout_s`` (loading a run takes a minute or two on a
    busy 2-core machine); deletes the application and stops Serve on exit.
    """
    import contextlib
    import time

    import requests
    from ray import serve

    @contextlib.contextmanager
    def run(app, name: str, route_prefix: str = "/", timeout_s: float = 300):
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
        base = f"http://127.0.0.1:{port}{route_prefix.rstrip('/')}"
        try:
            deadline, last = time.time() + timeout_s, "no answer"
            while time.time() < deadline:
                try:
                    r = requests.get(f"{base}/readyz", timeout=10)
                    if r.status_code == 200:
                        break
                    last = f"{r.status_code} {r.text[:200]}"
                except requests.ConnectionError as e:
                    last = str(e)[:200]
                time.sleep(1)
            else:
                raise AssertionError(f"{name} not ready within {timeout_s:.0f}s: {last}")
            yield base
        finally:
            serve.delete(name)
            serve.shutdown()

    return run


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT/reco
    run_dir: str
    name: str = "reco"
    prefix: str = "/reco"
    settings: dict = field(default_factory=dict)


@pytest.fixture(scope="package")
def served(tiny_run, serve_app):
    """The application as serve.app.build_app composes it, over the tiny run, under a route prefix
    (so the explorer's relative URLs are exercised), with two ranking replicas (one is killed in
    test_serve_http.py). Tight limits, so the over-limit cases are cheap to send."""
    from serve.app import build_app

    run_dir, _ = tiny_run
    limits = {"max_seed_ids": 500, "max_candidates": 200, "max_k": 50, "max_body_bytes": 20_000}
    app = build_app({"run_dir": run_dir, **limits}, {"RankingDeployment": {"num_replicas": 2}})
    with serve_app(app, "reco", "/reco") as base:
        yield Served(base, run_dir, settings=limits)
