"""A Ray Data scoring actor of the expand job killed mid-job: the audiences come out identical.

The session's tiny run already holds the undisturbed audiences; the same job is rerun on a copy
with ``faults.crash_once=[expand.score]``, which kills the first scoring actor's process on its
first batch. Ray Data restarts the actor and retries the batch.
"""

from __future__ import annotations

import shutil

import pytest

from ray_jobs import expand
from reco.config import load_config
from reco.faults import fired
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def test_killed_scoring_actor_is_retried_and_audiences_are_identical(tiny_run, tmp_path):
    calm_dir, _ = tiny_run
    run_dir = tmp_path / "actor-killed"
    shutil.copytree(calm_dir, run_dir)
    cfg = load_config("configs/tiny.yaml", [f"run_dir={run_dir}", "faults.crash_once=[expand.score]"])
    expand.run(cfg, RunDir(str(run_dir)))
    assert fired(str(run_dir), "expand.score"), "no actor was killed: the test proved nothing"
    calm = RunDir(calm_dir).read_table("audiences").sort_by([("seed_list_id", "ascending"), ("rank", "ascending")])
    hit = RunDir(str(run_dir)).read_table("audiences").sort_by([("seed_list_id", "ascending"), ("rank", "ascending")])
    assert hit.num_rows == calm.num_rows > 0
    assert hit.select(["seed_list_id", "user_id", "rank", "source"]).equals(
        calm.select(["seed_list_id", "user_id", "rank", "source"])
    )
    assert hit.column("score").to_pylist() == pytest.approx(calm.column("score").to_pylist(), rel=1e-6)
