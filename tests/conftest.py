"""Fixtures shared by every test layer.

- ``shared_data``: the real data sets in ../shared/data, read in place; a clear failure if the
  folder is missing (CI clones the project with ../shared beside it).
- ``ray_session``: one local Ray instance for the whole session (start-up costs seconds).
- ``tiny_config``: a Config for a few-hundred-user synthetic run in a temporary run directory.
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
        pytest.fail(f"the shared data sets are missing: expected them at {SHARED_DATA} (../shared/data beside the project)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from ray_jobs.common import configure_data_context

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    if not ray.is_initialized():
        # address="local": always a fresh instance for the tests, even when a `ray start` cluster runs here
        ray.init(address="local", num_cpus=2, include_dashboard=True, object_store_memory=512 * 2**20, log_to_driver=True)
    # the state API (ray.util.state) and subprocess jobs find this instance, not another one on the machine
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    configure_data_context()
    yield ray
    os.environ.pop("RAY_ADDRESS", None)
    ray.shutdown()


@pytest.fixture
def tiny_config(tmp_path) -> Config:
    return load_config(ROOT / "configs" / "tiny.yaml", [f"run_dir={tmp_path / 'run'}"])
