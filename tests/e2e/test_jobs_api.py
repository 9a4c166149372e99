"""The pipeline submitted through the Jobs API to a two-node cluster, with its input and run directory in S3.

A user's path to a cluster, end to end: ``ray start`` a head and a second node (separate temp
dirs, token auth on), put the interactions and seed lists in object storage (moto's S3 server),
and submit ``python -m ray_jobs.pipeline --config configs/tiny.yaml`` unchanged with the
repository as the working dir. The job must succeed, every artifact in S3 must verify against
the manifest's checksums on read-back, the training workers must have run on both nodes, and
the results must match the session's one-node run of the same data. A bad input
and a local run directory end FAILED with one line naming what to change. The main job is
submitted early in the session and only checked here (tests/e2e/two_node_job.py).
"""

from __future__ import annotations

import pytest
from ray.job_submission import JobStatus

from reco import artifacts
from reco.run_dir import RunDir
from tests.e2e.two_node_job import ROOT, generic_input, pipeline

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster(two_node_job):
    """The cluster, once the session's two-node job (tests/e2e/two_node_job.py) has ended."""
    two_node_job.outcome()
    return two_node_job.cluster


@pytest.fixture(scope="module")
def s3_run(two_node_job):
    out = two_node_job.outcome()
    assert out.status == JobStatus.SUCCEEDED, out.logs[-3000:]
    return out.run, out.logs, out.placed


def test_the_job_succeeds_and_every_artifact_in_s3_verifies(s3_run):
    run, logs, _ = s3_run
    assert run.uri.startswith("s3://")
    names = run.names()
    for rel in (artifacts.HISTORIES, artifacts.USER_EMBEDDINGS, artifacts.index("users"), artifacts.AUDIENCES,
                artifacts.RANKER, artifacts.report("expansion.md")):  # fmt: skip
        assert rel in names, rel
    for rel in names:
        run.artifact(rel)  # every file's size and sha256 against the manifest, read back from S3
    assert "ranking   deepfm" in logs  # the closing summary, printed by the job's driver


def test_training_workers_ran_on_both_nodes_and_scoring_actors_ran(s3_run, cluster):
    """Two 2-CPU training workers cannot share a 3-CPU node, so Ray Train must use both nodes.
    Ray Data may start fewer scoring actors than the pool's size for a run this small, so those
    are only required to have run somewhere on the cluster."""
    _, _, placed = s3_run
    assert cluster.alive_nodes() == 2
    assert len(placed["RayTrainWorker"]) == 2, placed
    scorers = set().union(*(nodes for cls, nodes in placed.items() if cls.startswith("MapWorker")))
    assert scorers and scorers <= set().union(*placed.values()), placed


def test_the_two_node_run_matches_the_one_node_run(s3_run, tiny_run):
    one, two = RunDir(tiny_run[0]), s3_run[0]
    for rel in (artifacts.USER_VOCAB, artifacts.TOPIC_VOCAB):
        cols = ["raw_id", "count"]
        assert one.read_table(rel, columns=cols).equals(two.read_table(rel, columns=cols)), rel
    t1, t2 = one.read_json(artifacts.metrics("training")), two.read_json(artifacts.metrics("training"))
    assert t1["epochs_run"] == t2["epochs_run"]
    assert abs(t1["val_hit@10"] - t2["val_hit@10"]) <= 0.05, (t1["val_hit@10"], t2["val_hit@10"])
    a1, a2 = one.read_table(artifacts.AUDIENCES).to_pandas(), two.read_table(artifacts.AUDIENCES).to_pandas()
    assert a1.groupby("seed_list_id").size().to_dict() == a2.groupby("seed_list_id").size().to_dict()
    overlap = [
        len(set(g.user_id) & set(a2[a2.seed_list_id == name].user_id)) / len(g)
        for name, g in a1.groupby("seed_list_id")
    ]
    assert sum(overlap) / len(overlap) >= 0.5, overlap  # separately trained embeddings, so not identical


def test_a_missing_input_fails_the_job_with_one_line_naming_it(cluster, s3):
    missing = s3.uri("input/no-such-file.csv")
    sets = [*generic_input(s3), f"data.path={missing}", f"run_dir={s3.uri('runs/bad-input')}"]
    status, logs = cluster.run_job(pipeline(*sets), str(ROOT))
    assert status == JobStatus.FAILED
    assert logs.strip().splitlines()[-1] == f"error: input not found: {missing}"
    assert "Traceback" not in logs


def test_a_local_run_directory_on_two_nodes_is_refused_up_front(cluster, s3):
    status, logs = cluster.run_job(pipeline(*generic_input(s3), "run_dir=runs/local-on-a-cluster"), str(ROOT))
    assert status == JobStatus.FAILED
    last = logs.strip().splitlines()[-1]
    assert last.startswith("error: run_dir runs/local-on-a-cluster: a local path on a cluster of 2 nodes")
    assert "s3://" in last and "ray.shared_disk" in last
