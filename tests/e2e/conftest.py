"""The one application over the tiny run that the HTTP and browser tests share (starting one
costs half a minute on two cores); ``serve_app`` (tests/conftest.py) runs it until ready."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT/reco
    run_dir: str
    name: str = "reco"
    prefix: str = "/reco"
    settings: dict = field(default_factory=dict)


@pytest.fixture(scope="package")
def served(tiny_run, serve_app):
    """The application as serve.app.compose builds it, over the tiny run, under a route prefix
    (so the explorer's relative URLs are exercised), with two ranking replicas (one is killed in
    test_serve_http.py). Tight limits, so the over-limit cases are cheap to send."""
    from serve.app import compose

    run_dir, _ = tiny_run
    limits = {"max_seed_ids": 500, "max_candidates": 200, "max_k": 50, "max_body_bytes": 20_000}
    app = compose({"run_dir": run_dir, **limits}, {"RankingDeployment": {"num_replicas": 2}})
    with serve_app(app, "reco", "/reco") as base:
        yield Served(base, run_dir, settings=limits)
