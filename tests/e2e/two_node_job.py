"""The Jobs API test's two-node job, started as soon as its inputs exist and checked later.

test_jobs_api.py submits the whole tiny pipeline to a two-node ``ray start`` cluster with its
input and run directory in S3. The job takes about three minutes, most of it Ray starting
processes, and leaves one of the two cores idle about half the time. So the e2e session starts
it in the background right after the session's tiny run (whose seed lists it expands) and the
tests before test_jobs_api.py run beside it; test_jobs_api.py then waits for the result and
checks it exactly as it would a job it had just submitted. The cluster is started in the main
thread; the background thread only uploads the inputs, submits and polls.
"""

from __future__ import annotations

import io
import shlex
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from ray.job_submission import JobStatus

from reco import artifacts
from reco.config import load_config
from reco.data import synthetic
from reco.run_dir import RunDir
from reco.storage import locate
from tests.e2e.local_cluster import LocalCluster

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


def put(uri: str, data: bytes) -> None:
    loc = locate(uri)
    with loc.fs.open_output_stream(loc.path) as f:
        f.write(data)


def pipeline(*sets: str) -> str:
    """The job's entrypoint: the tiny pipeline as the session's one-node run ran it, plus ``sets``."""
    args = ["--config", "configs/tiny.yaml", "--set", "embedding.epochs=4"]
    for kv in sets:
        args += ["--set", kv]
    return "python -m ray_jobs.pipeline " + " ".join(shlex.quote(a) for a in args)


def generic_input(s3) -> list[str]:
    """Settings that read the interactions as a generic CSV and the seed lists from S3."""
    return [
        "data.format=generic",
        f"data.path={s3.uri('input/interactions.csv')}",
        "data.columns={user: user, topic: item, weight: weight, ts: ts}",
        f"expansion.seed_lists={s3.uri('input/seed_lists.parquet')}",
    ]


def upload_inputs(s3, tiny_run_dir: str) -> None:
    """The tiny run's interactions as a CSV, and the seed lists it expanded, into S3."""
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
    put(s3.uri("input/interactions.csv"), buf.getvalue())
    put(s3.uri("input/seed_lists.parquet"), RunDir(tiny_run_dir).read_bytes(artifacts.SEED_LISTS))


@dataclass(frozen=True)
class Outcome:
    run: RunDir
    status: JobStatus
    logs: str
    placed: dict[str, set[str]]  # actor class -> node ids it ran on


class TwoNodeJob:
    """``TwoNodeJob(s3, tiny_run_dir)`` starts the cluster, then the job in the background;
    ``outcome()`` waits for it; ``close()`` stops the cluster."""

    def __init__(self, s3, tiny_run_dir: str):
        self.s3 = s3
        self.cluster = LocalCluster(nodes=2, cpus=3, env=s3.env).__enter__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="two-node-job")
        self._future: Future[Outcome] = self._pool.submit(self._run, tiny_run_dir)

    def _run(self, tiny_run_dir: str) -> Outcome:
        upload_inputs(self.s3, tiny_run_dir)
        run_uri = self.s3.uri("runs/two-node")
        entry = pipeline(*generic_input(self.s3), f"run_dir={run_uri}", *PLACEMENT)
        status, logs = self.cluster.run_job(entry, str(ROOT))
        return Outcome(RunDir(run_uri), status, logs, self.cluster.actor_nodes())

    def outcome(self, timeout_s: float = 1200) -> Outcome:
        return self._future.result(timeout=timeout_s)

    def close(self) -> None:
        try:
            self._future.result(timeout=600)
        except Exception:
            pass  # the job's own test reports its failure; here only the cluster is stopped
        finally:
            self._pool.shutdown(wait=False)
            self.cluster.__exit__(None, None, None)
