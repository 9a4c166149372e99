"""Faults a cluster produces, survived: a training worker killed mid-epoch, a training job killed
and rerun (a batch-scoring actor killed mid-job: test_expand_faults.py).

Each fault is a real process death (``os._exit`` at a named point, see reco/faults.py, or SIGKILL
of a whole job), so what is tested is Ray's recovery: Ray Train restoring the worker group from
the latest checkpoint, Ray Data restarting the actor and retrying its task.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ray_jobs import train_embeddings
from reco import artifacts
from reco.config import load_config
from reco.faults import fired
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["embedding.epochs=4", "embedding.patience=10", "embedding.num_workers=2", "embedding.max_failures=1"]


@pytest.fixture(scope="module")
def ingested(tiny_run, tmp_path_factory) -> Path:
    """A copy of the session's tiny run without its training checkpoints (so training starts afresh)."""
    run_dir = tmp_path_factory.mktemp("faults") / "ingested"
    shutil.copytree(tiny_run[0], run_dir, ignore=shutil.ignore_patterns("train"))
    for rel in (artifacts.metrics("training"), artifacts.STARSPACE_MODEL):
        RunDir(str(run_dir)).forget(rel)
    return run_dir


def _train(ingested: Path, name: str | None, extra: list[str]) -> tuple[dict, str]:
    """Train on a copy of ``ingested`` named ``name`` (None: in ``ingested`` itself)."""
    run_dir = ingested
    if name is not None:
        run_dir = ingested.parent / name
        shutil.copytree(ingested, run_dir)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"run_dir={run_dir}", *TRAIN, *extra])
    train_embeddings.run(cfg, RunDir(str(run_dir)))
    return RunDir(str(run_dir)).read_json(artifacts.metrics("training")), str(run_dir)


def test_training_worker_killed_mid_epoch_restores_and_matches_an_undisturbed_run(tiny_run, ingested):
    calm = RunDir(tiny_run[0]).read_json(artifacts.metrics("training"))  # the same settings, undisturbed
    hit, run_dir = _train(ingested, "worker-killed", ["faults.crash_once=[train_embeddings.step]"])
    assert fired(run_dir, "train_embeddings.step"), "the worker was never killed: the test proved nothing"
    # killed in epoch 3: restored from the latest checkpoint Ray Train had registered (after epoch 1 or 2)
    assert hit["resumed_after_epochs"] and 1 <= hit["resumed_after_epochs"][0] <= 2, hit["resumed_after_epochs"]
    assert hit["epochs_run"] == 4
    assert [h["epoch"] for h in hit["history"]] == [1, 2, 3, 4]
    assert abs(hit["val_hit@10"] - calm["val_hit@10"]) <= 0.05, (hit["val_hit@10"], calm["val_hit@10"])


def test_killed_training_job_resumes_when_rerun(ingested, ray_session):
    """SIGKILL the whole job (driver and all) after its first checkpoint; the rerun continues it."""
    run_dir = ingested.parent / "job-killed"
    shutil.copytree(ingested, run_dir)
    address = ray_session.get_runtime_context().gcs_address
    cmd = [
        sys.executable,
        "-m",
        "ray_jobs.train_embeddings",
        "--config",
        "configs/tiny.yaml",
        "--set",
        f"run_dir={run_dir}",
        "--set",
        f"ray.address={address}",
        *[x for kv in TRAIN for x in ("--set", kv)],
        "--set",
        "embedding.epochs=30",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    job = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and not list((run_dir / "train").glob("*/checkpoint_manager_snapshot.json")):
            assert job.poll() is None, "the job ended before it could be killed"
            time.sleep(0.5)
        assert list((run_dir / "train").glob("*/checkpoint_manager_snapshot.json")), "no checkpoint within 300 s"
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    assert not RunDir(str(run_dir)).has(artifacts.metrics("training"))
    time.sleep(2)  # let Ray notice the dead driver and release its workers
    killed_runs = sorted(d.name for d in (run_dir / "train").iterdir() if d.is_dir())
    summary, _ = _train(
        run_dir, None, ["embedding.epochs=6"]
    )  # the job again (here in the test process), a few epochs more
    assert summary["train_run"] in killed_runs, (summary["train_run"], killed_runs)
    resumed = summary["resumed_after_epochs"]
    assert resumed and resumed[0] >= 1, resumed
    assert [h["epoch"] for h in summary["history"]] == list(range(1, summary["epochs_run"] + 1))
    assert summary["epochs_run"] >= resumed[0]
