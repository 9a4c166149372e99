"""One tiny pipeline run shared by the end-to-end tests (the pipeline as a user runs it)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(ray_session, tmp_path_factory):
    """(run_dir, printed report): `python -m ray_jobs.pipeline --config configs/tiny.yaml`, in-process."""
    import contextlib
    import io

    from ray_jobs import pipeline

    run_dir = tmp_path_factory.mktemp("tiny-run")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = pipeline.main(["--config", "configs/tiny.yaml", "--set", f"run_dir={run_dir}", "--set", "embedding.epochs=4"])
    assert rc == 0, "the tiny pipeline failed"
    return str(run_dir), out.getvalue()


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
