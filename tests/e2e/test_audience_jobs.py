"""Audience jobs over real HTTP: the Serve app over the tiny run, the expand job on the session's Ray
instance through its Jobs API (token auth on), nothing faked.

One application (compact layout, one ingress replica) is deployed beside whatever Serve already
runs. Two jobs are submitted at the start so that they run while the other checks happen: the
largest planted community's members as a CSV (with an Idempotency-Key), and a list of ids the
run has never seen (from another key). Checked: a retry gets the same job and a second job over
the per-key limit a 429; a bad upload a one-line 400; the ingress replica killed while the job
runs, after which the job still succeeds and is read through the new replica; its results paged
by cursor and downloaded as Parquet and CSV, all three the same rows, finding held-out members
of the community far above chance; the unknown-ids job failed with the job's one-line error.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from serve.auth import entry, new_key
from tests.conftest import free_port
from tests.e2e.helpers import community, wait_ready

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
APP, PREFIX = "audience-jobs", "/aj"
AUDIENCE = 100


@dataclass(frozen=True)
class JobsApp:
    base: str  # http://127.0.0.1:PORT/aj
    root: Path  # the jobs' storage
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def get(self, path: str, who: str = "alice", **params) -> requests.Response:
        return requests.get(f"{self.base}/v1/audience-jobs{path}", headers=self.auth(who), params=params, timeout=60)

    def post(self, body: bytes, who: str = "alice", key: str | None = None, **params) -> requests.Response:
        headers = {**self.auth(who), "Content-Type": "text/csv"} | ({"Idempotency-Key": key} if key else {})
        return requests.post(f"{self.base}/v1/audience-jobs", data=body, headers=headers, params=params, timeout=60)


def _gateways() -> list:
    from ray.util.state import list_actors

    return list_actors(filters=[("class_name", "=", f"ServeReplica:{APP}:Gateway"), ("state", "=", "ALIVE")])


@pytest.fixture(scope="module")
def app(tiny_run, ray_session, tmp_path_factory):
    """The app over the tiny run, its jobs' state in a folder of its own, keys for alice and bob."""
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client

    from serve.app import compose

    run_dir, _ = tiny_run
    tmp = tmp_path_factory.mktemp("audience-jobs")
    keys = {"alice": new_key(), "bob": new_key(), "carol": new_key()}
    keys_file = tmp / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": [entry(n, k, ["expand"]) for n, k in keys.items()]}))
    settings = {
        "run_dir": run_dir,
        "keys_file": str(keys_file),
        "layout": "compact",
        "max_body_bytes": 4_096,  # below the first upload: the upload route is not held to it
        "access_log": False,
        "jobs": {
            "address": f"http://{ray._private.worker.get_dashboard_url()}",
            "root": str(tmp / "jobs"),
            "max_jobs_per_key": 1,
            "python": sys.executable,  # the project's environment, whatever is on the cluster's PATH
            "config": str(ROOT / "configs" / "tiny.yaml"),
            "audience_size": AUDIENCE,
            "default_page_size": 50,
            "max_page_size": 100,
        },
    }
    client = _get_global_client(raise_if_no_controller_running=False)
    started = client is None
    if started:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
    else:  # another module's application is up: deploy beside it, on its port
        port = client.http_config.port
    serve.run(compose(settings), name=APP, route_prefix=PREFIX, blocking=False)
    base = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        wait_ready(base, APP)
        yield JobsApp(base, tmp / "jobs", keys)
    finally:
        serve.delete(APP)
        if started:
            serve.shutdown()


def _csv(**columns) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buf)
    return buf.getvalue()


@dataclass(frozen=True)
class Submitted:
    job_id: str
    first: dict  # the 202's body
    location: str  # its Location header
    seeds: list[str]
    held_out: list[str]
    n_users: int
    failing_id: str  # bob's job of unknown ids


@pytest.fixture(scope="module")
def submitted(app, tiny_run) -> Submitted:
    """Both jobs submitted at once, so they run while the tests below look at other things."""
    seeds, held_out, n_users = community(tiny_run[0])
    ids = seeds + ["nobody-1", "nobody-2"]
    body = _csv(seed_list_id=["community"] * len(ids), user_id=ids) + b"\n" * 4_096  # over max_body_bytes
    r = app.post(body, key="community-1")
    assert r.status_code == 202, r.text
    bad = app.post(_csv(user_id=[f"stranger-{i}" for i in range(40)]), who="bob", seed_list_id="strangers")
    assert bad.status_code == 202, bad.text
    return Submitted(
        r.json()["job_id"], r.json(), r.headers["Location"], seeds, held_out, n_users, bad.json()["job_id"]
    )


def _wait(app: JobsApp, job_id: str, who: str, until, timeout_s: float = 240) -> tuple[dict, list[dict]]:
    """Poll until ``until(view)``: (the last view, every view seen); errors while a replica restarts are skipped."""
    seen, deadline = [], time.time() + timeout_s
    while time.time() < deadline:
        try:
            r = app.get(f"/{job_id}", who)
        except requests.RequestException:
            r = None
        if r is not None and r.status_code == 200:
            seen.append(r.json())
            if until(seen[-1]):
                return seen[-1], seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id}: {seen[-1] if seen else 'no answer'} after {timeout_s:.0f}s")


def test_a_retry_gets_the_same_job_and_a_second_job_over_the_limit_gets_429(app, submitted):
    assert submitted.first["state"] == "queued" and submitted.first["upload"]["rows"] == len(submitted.seeds) + 2
    assert submitted.location == f"{app.base}/v1/audience-jobs/{submitted.job_id}"  # under the route prefix
    again = app.post(b"seed_list_id,user_id\nx,1\n", key="community-1")
    assert again.status_code == 202 and again.json()["job_id"] == submitted.job_id
    more = app.post(_csv(user_id=submitted.seeds))
    assert more.status_code == 429, more.text
    assert more.json()["error"]["message"] == (
        "the key 'alice' has 1 audience job(s) queued or running, the limit is 1: retry when one has finished"
    )


def test_a_bad_upload_is_refused_with_one_line(app):
    r = app.post(b"seed_list_id,name\nA,x\n", who="carol")  # alice and bob are at their limit
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert message == "the upload has no user_id column; it has ['seed_list_id', 'name']"


def test_the_job_survives_its_ingress_replica_and_is_read_through_the_new_one(app, submitted):
    import ray

    running, _ = _wait(app, submitted.job_id, "alice", lambda v: v["state"] != "queued")
    assert running["state"] in ("running", "succeeded"), running
    before = _gateways()
    assert len(before) == 1
    ray.kill(ray.get_actor(before[0].name, namespace="serve"), no_restart=True)
    done, seen = _wait(app, submitted.job_id, "alice", lambda v: v["state"] in ("succeeded", "failed"))
    assert done["state"] == "succeeded", done
    after = _gateways()
    assert len(after) == 1 and after[0].actor_id != before[0].actor_id, "the ingress replica was not replaced"
    assert done["result"]["lists"] == 1 and done["result"]["unknown_ids"] == 2
    assert any(v["progress"] and v["progress"]["phase"] for v in [running, *seen]), "no progress was ever reported"


def test_results_by_cursor_and_both_downloads_hold_the_same_audience(app, submitted):
    done, _ = _wait(app, submitted.job_id, "alice", lambda v: v["state"] == "succeeded", timeout_s=60)
    rows, cursor, pages = [], None, 0
    while True:
        page = app.get(f"/{submitted.job_id}/results", limit=30, **({"cursor": cursor} if cursor else {})).json()
        rows += page["rows"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(rows) == page["total"] == done["result"]["audience_rows"] == AUDIENCE and pages == 4
    assert [r["rank"] for r in rows] == list(range(1, AUDIENCE + 1))
    members = [r["user_id"] for r in rows]
    assert not set(members) & set(submitted.seeds)
    recall = len(set(members) & set(submitted.held_out)) / len(submitted.held_out)
    chance = AUDIENCE / (submitted.n_users - len(submitted.seeds))
    assert recall > 2 * chance, (recall, chance)

    parquet = app.get(f"/{submitted.job_id}/download", format="parquet")
    assert parquet.status_code == 200
    assert pq.read_table(io.BytesIO(parquet.content)).to_pylist() == rows
    csv = app.get(f"/{submitted.job_id}/download", format="csv")
    assert csv.status_code == 200
    types = {"seed_list_id": pa.string(), "user_id": pa.string(), "source": pa.string()}
    got = pacsv.read_csv(io.BytesIO(csv.content), convert_options=pacsv.ConvertOptions(column_types=types))
    assert got.to_pylist() == rows


def test_a_list_of_unknown_ids_fails_with_the_jobs_one_line_error(app, submitted):
    failed, _ = _wait(app, submitted.failing_id, "bob", lambda v: v["state"] in ("succeeded", "failed"))
    assert failed["state"] == "failed", failed
    assert failed["error"].startswith(
        "the uploaded seed list: no seed list has at least expansion.min_seeds=10 known seeds"
    ), failed["error"]
    assert "\n" not in failed["error"] and "Traceback" not in failed["error"]
    r = app.get(f"/{submitted.failing_id}/results", who="bob")
    assert r.status_code == 409 and "failed" in r.json()["error"]["message"]
