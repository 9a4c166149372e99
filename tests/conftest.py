"""Fixtures shared by every test layer.

- ``shared_data``: the real data sets in ../shared/data, read in place; a clear failure if the
  folder is missing (CI clones the project with ../shared beside it).
- ``s3``: a real S3 endpoint (moto's server mode) on 127.0.0.1 for the session, with a bucket;
  its address and credentials are in the environment (``AWS_ENDPOINT_URL``...), so ``s3://``
  URIs work in this process, in Ray's workers and in jobs submitted to a cluster started here.
- ``ray_session``: one local Ray instance for the whole session (start-up costs seconds).
- ``tiny_run``: one tiny pipeline run (configs/tiny.yaml, every step, as a user runs it) that
  the integration and end-to-end tests read; ``copy_run`` gives a test its own copy to change.
- ``tiny_config``: a Config for a few-hundred-user synthetic run in a temporary run directory.
- ``serve_app``: runs a Ray Serve application on a free port until /readyz answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class S3:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    env: dict[str, str]  # what a process needs to reach it

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.lstrip('/')}"


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on a free local port, the session's bucket, and the environment to reach it."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", allow_bucket_creation=True).create_dir("reco-test")
    yield S3(endpoint, "reco-test", env)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="session")
def ray_session(s3):
    """The session's local Ray instance; started after ``s3`` so its workers inherit the endpoint."""
    import ray

    from ray_jobs.common import configure_data_context

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    # Ray Train's controller polls its workers every 2 s: a tiny run would wait out the interval at
    # its start and end. The tests' runs poll faster (local clusters and subprocess jobs inherit it).
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
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

    from ray import serve

    from tests.e2e.helpers import wait_ready

    @contextlib.contextmanager
    def run(app, name: str, route_prefix: str = "/", timeout_s: float = 300):
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
        base = f"http://127.0.0.1:{port}{route_prefix.rstrip('/')}"
        try:
            wait_ready(base, name, timeout_s)
            yield base
        finally:
            serve.delete(name)
            serve.shutdown()

    return run
