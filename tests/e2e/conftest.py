"""The one application over the tiny run that the HTTP and browser tests share (starting one
costs half a minute on two cores); ``serve_app`` (tests/conftest.py) runs it until ready.

It runs with a keys file of several keys, one per scope and an admin key (``served.keys`` by
name, ``served.headers(name)`` to send one), and writes its audit log to ``served.audit_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

# name -> scopes of the keys the served app knows
KEYS = {
    "admin": ["admin"],
    "expand": ["expand"],
    "rank": ["rank"],
    "recommend": ["recommend"],
    "explorer-page": ["explorer", "expand", "recommend"],  # what the explorer page needs, no more
}


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT/reco
    run_dir: str
    name: str = "reco"
    prefix: str = "/reco"
    settings: dict = field(default_factory=dict)  # the app's args but run_dir: limits, keys_file, audit_dir
    keys: dict[str, str] = field(default_factory=dict)  # name -> key

    def headers(self, name: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    @property
    def audit_dir(self) -> str:
        return self.settings["audit_dir"]


def make_keys(path) -> dict[str, str]:
    """A keys file at ``path`` with one fresh key per entry of KEYS; the keys by name."""
    from serve.auth import entry, new_key
    from serve.keys import write_entries

    keys = {name: new_key() for name in KEYS}
    write_entries(path, [entry(name, keys[name], scopes) for name, scopes in KEYS.items()])
    return keys


@pytest.fixture(scope="package")
def served(tiny_run, serve_app, tmp_path_factory):
    """The application as serve.app.compose builds it, over the tiny run, under a route prefix
    (so the explorer's relative URLs are exercised), with two ranking replicas (one is killed in
    test_serve_http.py). Tight limits, so the over-limit cases are cheap to send; a smaller
    audience floor than the default, for the tiny run's 600 users; the audit log flushed every
    second."""
    from serve.app import compose

    run_dir, _ = tiny_run
    secrets = tmp_path_factory.mktemp("serve-keys")
    keys = make_keys(secrets / "keys.yaml")
    settings = {
        "max_seed_ids": 500,
        "max_candidates": 200,
        "max_k": 50,
        "max_body_bytes": 20_000,
        "min_audience_size": 20,
        "keys_file": str(secrets / "keys.yaml"),
        "audit_dir": str(tmp_path_factory.mktemp("serve-audit")),
        "audit_flush_seconds": 1.0,
    }
    app = compose({"run_dir": run_dir, **settings}, {"RankingDeployment": {"num_replicas": 2}})
    with serve_app(app, "reco", "/reco") as base:
        yield Served(base, run_dir, settings=settings, keys=keys)
