"""Fixtures shared by every test layer.

- ``shared_data``: the real data sets in ../shared/data, read in place; a clear failure if the
  folder is missing (CI clones the project with ../shared beside it).
- ``ray_session``: one local Ray instance for the whole session (start-up costs seconds).
- ``tiny_run``: one tiny pipeline run (configs/tiny.yaml, every step, as a user runs it) that
  the integration and end-to-end tests read; ``copy_run`` gives a test its own copy to change.
- ``tiny_config``: a Config for a few-hundred-user synthetic run in a temporary run directory.
- ``serve_app``: runs a Ray Serve application on a free port until /readyz answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reco.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"the shared data sets are missing: expected them at {SHARED_DATA} (../shared/data beside the project)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from ray_jobs.common import configure_data_context

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    if not ray.is_initialized():
        # address="local": always a fresh instance for the tests, even when a `ray start` cluster runs here
        ray.init(
            address="local", num_cpus=2, include_dashboard=True, object_store_memory=512 * 2**20, log_to_driver=True
        )
    # the state API (ray.util.state) and subprocess jobs find this instance, not another one on the machine
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    configure_data_context()
    yield ray
    os.environ.pop("RAY_ADDRESS", None)
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_run(ray_session, tmp_path_factory):
    """(run_dir, printed report): `python -m ray_jobs.pipeline --config configs/tiny.yaml`, in-process."""
    import contextlib
    import io

    from ray_jobs import pipeline

    run_dir = tmp_path_factory.mktemp("tiny-run")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = pipeline.main(
            ["--config", "configs/tiny.yaml", "--set", f"run_dir={run_dir}", "--set", "embedding.epochs=4"]
        )
    assert rc == 0, "the tiny pipeline failed"
    return str(run_dir), out.getvalue()


@pytest.fixture(scope="session")
def copy_run(tiny_run, tmp_path_factory):
    """``copy_run(name)``: a private copy of the tiny run, for a test that writes to it."""
    import shutil

    def copy(name: str) -> Path:
        dest = tmp_path_factory.mktemp(name) / "run"
        shutil.copytree(tiny_run[0], dest)
        return dest

    return copy


@pytest.fixture
def tiny_config(tmp_path) -> Config:
    return load_config(ROOT / "configs" / "tiny.yaml", [f"run_dir={tmp_path / 'run'}"])


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
