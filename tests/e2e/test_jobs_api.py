"""The pipeline submitted through the Jobs API to a two-node cluster, with its input and run directory in S3.

A user's path to a cluster, end to end: ``ray start`` a head and a second node (separate temp
dirs, token auth on), put the interactions and seed lists in object storage (moto's S3 server),
and submit ``python -m ray_jobs.pipeline --config configs/tiny.yaml`` unchanged with the
repository as the working dir. The job must succeed, every artifact in S3 must verify against
the manifest's checksums on read-back, the training workers must have run on both nodes, and
the results must match the session's one-node run of the same data. A bad input
and a local run directory end FAILED with one line naming what to change.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from ray.job_submission import JobStatus

from reco import artifacts
from reco.config import load_config
from reco.data import synthetic
from reco.run_dir import RunDir
from reco.storage import locate
from tests.e2e.local_cluster import LocalCluster

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
# Two CPUs per training worker and scoring actor on 3-CPU nodes: two cannot share a node, so Ray
# must place one on each when both run at once.
PLACEMENT = [
    "embedding.cpus_per_worker=2",
    "export.actors=2",
    "export.cpus_per_actor=2",
    "expansion.job.actors=2",
    "expansion.job.cpus_per_actor=2",
]


def _put(uri: str, data: bytes) -> None:
    loc = locate(uri)
    with loc.fs.open_output_stream(loc.path) as f:
        f.write(data)


@pytest.fixture(scope="module")
def inputs(s3, tiny_run):
    """The tiny run's interactions as a CSV, and the seed lists it expanded, in S3."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    raw = synthetic.generate(cfg.data.synthetic)
    table = pa.table({
        "user": raw.column("user_id").cast(pa.string()),
        "item": raw.column("topic_id").cast(pa.string()),
        "weight": raw.column("weight"),
        "ts": raw.column("ts"),
    })  # fmt: skip
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    _put(s3.uri("input/interactions.csv"), buf.getvalue())
    lists = RunDir(tiny_run[0]).read_bytes(artifacts.SEED_LISTS)
    _put(s3.uri("input/seed_lists.parquet"), lists)
    return s3


@pytest.fixture(scope="module")
def cluster(s3):
    with LocalCluster(nodes=2, cpus=3, env=s3.env) as c:
        yield c


def _pipeline(*sets: str) -> str:
    args = ["--config", "configs/tiny.yaml", "--set", "embedding.epochs=4"]
    for kv in sets:
        args += ["--set", kv]
    return "python -m ray_jobs.pipeline " + " ".join(shlex.quote(a) for a in args)


def _generic_input(s3) -> list[str]:
    return [
        "data.format=generic",
        f"data.path={s3.uri('input/interactions.csv')}",
        "data.columns={user: user, topic: item, weight: weight, ts: ts}",
        f"expansion.seed_lists={s3.uri('input/seed_lists.parquet')}",
    ]


@pytest.fixture(scope="module")
def s3_run(cluster, inputs):
    run_uri = inputs.uri("runs/two-node")
    status, logs = cluster.run_job(_pipeline(*_generic_input(inputs), f"run_dir={run_uri}", *PLACEMENT), str(ROOT))
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    return RunDir(run_uri), logs, cluster.actor_nodes()


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


def test_a_missing_input_fails_the_job_with_one_line_naming_it(cluster, inputs):
    missing = inputs.uri("input/no-such-file.csv")
    sets = [*_generic_input(inputs), f"data.path={missing}", f"run_dir={inputs.uri('runs/bad-input')}"]
    status, logs = cluster.run_job(_pipeline(*sets), str(ROOT))
    assert status == JobStatus.FAILED
    assert logs.strip().splitlines()[-1] == f"error: input not found: {missing}"
    assert "Traceback" not in logs


def test_a_local_run_directory_on_two_nodes_is_refused_up_front(cluster, inputs):
    status, logs = cluster.run_job(_pipeline(*_generic_input(inputs), "run_dir=runs/local-on-a-cluster"), str(ROOT))
    assert status == JobStatus.FAILED
    last = logs.strip().splitlines()[-1]
    assert last.startswith("error: run_dir runs/local-on-a-cluster: a local path on a cluster of 2 nodes")
    assert "s3://" in last and "ray.shared_disk" in last
