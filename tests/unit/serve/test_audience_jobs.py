"""Audience jobs over HTTP without Ray: the real app (serve/api.py create_app) on uvicorn, a fake Jobs API.

The fake records what would be submitted, and a test plays the job's part by writing what
``ray_jobs.expand --output ... --status ...`` writes (status.json, the output run directory).
Checked: uploads in each format streamed, converted and submitted; bad uploads one line, leaving
nothing behind; the byte limit while streaming (and the app's 1 MB body limit not applied to the
upload); idempotent retries; the per-key limit; every state a job can be in, including a job
that died without a word; paging by cursor across files and row groups; downloads; who may see
a job; a second app over the same storage (a restarted replica) answering for the first's jobs; and
all of a job's state on S3 (moto's server), read back by a second app.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import socket
import threading
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import requests
import uvicorn

from reco import artifacts
from reco.expansion import job_status
from reco.run_dir import RunDir
from serve import jobs_routes
from serve.auth import KeyStore, entry, new_key
from serve.jobs_api import JobsApiError, RayJob, last_error_line
from serve.settings import ServeSettings

KEYS = {name: new_key() for name in ("alice", "bob", "ops", "ranker")}
SCOPES = {"alice": ["expand"], "bob": ["expand"], "ops": ["admin"], "ranker": ["rank"]}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


class FakeJobsApi:
    """The Jobs API as the store sees it: submissions recorded, states set by the test."""

    def __init__(self) -> None:
        self.jobs: dict[str, RayJob] = {}
        self.submitted: list[dict] = []
        self.logs: dict[str, str] = {}
        self.down = False

    def submit(self, submission_id: str, entrypoint: str, runtime_env: dict, metadata: dict[str, str]) -> None:
        if self.down:
            raise JobsApiError("the Jobs API at http://nowhere failed to submit the job: Connection refused")
        self.submitted.append(
            {"id": submission_id, "entrypoint": entrypoint, "runtime_env": runtime_env, "metadata": metadata}
        )
        self.jobs[submission_id] = RayJob("PENDING")

    def info(self, submission_id: str) -> RayJob | None:
        if self.down:
            raise JobsApiError("the Jobs API at http://nowhere failed to read the job: Connection refused")
        return self.jobs.get(submission_id)

    def error_line(self, submission_id: str) -> str | None:
        return last_error_line(self.logs.get(submission_id, ""))

    def args(self, job_id: str) -> dict[str, str]:
        """The job's command line: its --output, --status and every --set, by name."""
        sub = next(s for s in self.submitted if s["id"] == f"audience-{job_id}")
        words = shlex.split(sub["entrypoint"])
        out = {"python": words[0], "module": words[2]}
        for flag, value in zip(words[3::2], words[4::2]):
            if flag == "--set":
                k, _, v = value.partition("=")
                out[k] = v
            else:
                out[flag.lstrip("-")] = value
        return out


def audience_table(n: int, lists: int = 2) -> pa.Table:
    per = n // lists
    return pa.table(
        {
            "seed_list_id": [f"list-{i // per}" for i in range(n)],
            "user_id": [f"u{i}" for i in range(n)],
            "score": [1.0 - (i % per) / per for i in range(n)],
            "rank": [i % per + 1 for i in range(n)],
            "source": ["both" if i % 3 else "density" for i in range(n)],
        }
    )


def play_job(api: FakeJobsApi, job_id: str, table: pa.Table | None = None, files: int = 2, group: int = 7) -> None:
    """Do what the expand job does for ``job_id``: running with progress, then the output and succeeded."""
    a = api.args(job_id)
    api.jobs[f"audience-{job_id}"] = RayJob("RUNNING")
    job_status.write_status(
        a["status"], {"state": "running", "phase": "scoring", "progress": 0.5, "users_scored": 300, "users_total": 600}
    )
    if table is None:
        return
    out = RunDir(a["output"])
    out.ensure()
    tmp = out.staging(artifacts.AUDIENCES)
    step = -(-table.num_rows // files)
    for i in range(files):
        part = out.path(f"{tmp}/part-{i}.parquet")
        pq.write_table(table.slice(i * step, step), part, row_group_size=group, filesystem=out.fs)
    out.commit_dir(tmp, artifacts.AUDIENCES, step="expand", rows=table.num_rows)
    job_status.write_status(
        a["status"],
        {"state": "succeeded", "progress": 1.0, "result": {"lists": 2, "audience_rows": table.num_rows}},
    )
    api.jobs[f"audience-{job_id}"] = RayJob("SUCCEEDED")


@contextlib.contextmanager
def serving(app):
    """The app on uvicorn on a free local port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """``make_app(api, **jobs_settings)`` -> base URL of the real app over an empty run dir, with ``api``."""
    from serve.api import create_app

    keys = KeyStore.from_entries([entry(n, k, SCOPES[n]) for n, k in KEYS.items()], "test keys")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stack = contextlib.ExitStack()

    def make(api: FakeJobsApi, run_uri: str | None = None, **jobs) -> str:
        monkeypatch.setattr(jobs_routes, "RayJobsApi", lambda address: api)
        settings = ServeSettings(
            run_dir=run_uri or str(run_dir),
            max_body_bytes=20_000,
            min_seed_ids=3,
            min_audience_size=10,
            access_log=False,
            jobs={"max_upload_bytes": 200_000, "max_jobs_per_key": 2, "audience_size": 50, "max_page_size": 40,
                  "default_page_size": 10, "config": "/srv/configs/tiny.yaml", **jobs},
        )  # fmt: skip
        return stack.enter_context(serving(create_app(settings, None, None, keys=keys)))

    make.run_dir = run_dir
    yield make
    stack.close()


def csv_bytes(rows: int, lists: int = 1, with_list: bool = True) -> bytes:
    cols = {"user_id": list(range(1, rows + 1))}
    if with_list:
        cols = {"seed_list_id": [f"L{i % lists}" for i in range(rows)], **cols}
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf)
    return buf.getvalue()


def post(base: str, body, who: str = "alice", ctype: str = "text/csv", key: str | None = None, **params):
    headers = {**auth(who), "Content-Type": ctype}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"{base}/v1/audience-jobs", data=body, headers=headers, params=params, timeout=30)


def one_line_error(r: requests.Response) -> str:
    msg = r.json()["error"]["message"]
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


# -- uploads ---------------------------------------------------------------------------------------


def test_a_csv_upload_is_stored_as_seeds_and_submitted_as_the_expand_job(make_app):
    api = FakeJobsApi()
    base = make_app(api)
    r = post(base, csv_bytes(30, lists=2), audience_size=25)
    assert r.status_code == 202, r.text
    job = r.json()
    job_id = job["job_id"]
    assert job["state"] == "queued" and job["upload"]["rows"] == 30 and job["upload"]["lists"] == 2
    assert r.headers["Location"].endswith(f"/v1/audience-jobs/{job_id}")
    folder = make_app.run_dir / "audience_jobs" / job_id
    seeds = pq.read_table(folder / "seeds.parquet")
    assert seeds.schema.names == ["seed_list_id", "user_id"] and seeds.num_rows == 30
    assert seeds.column("user_id").to_pylist()[:3] == ["1", "2", "3"]  # ids as strings, as the job reads them
    assert not list(folder.glob("upload.*")), "the raw upload is removed once converted"
    a = api.args(job_id)
    assert (a["python"], a["module"], a["config"]) == ("python", "ray_jobs.expand", "/srv/configs/tiny.yaml")
    assert a["run_dir"] == str(make_app.run_dir) and a["expansion.seed_lists"] == str(folder / "seeds.parquet")
    assert a["expansion.audience_size"] == "25" and a["expansion.min_seeds"] == "3"  # the privacy floor
    assert a["output"] == str(folder / "output") and a["status"] == str(folder / "status.json")
    assert api.submitted[0]["metadata"] == {"audience_job": job_id, "owner": "alice"}
    assert json.loads((folder / "request.json").read_text())["owner"] == "alice"


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_json_lines_uploads_without_a_list_column_make_one_named_list(make_app, fmt):
    api = FakeJobsApi()
    base = make_app(api)
    table = pa.table({"user_id": [f"u{i}" for i in range(12)], "other": list(range(12))})
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=5)
        body = buf.getvalue()
    else:
        body = "".join(json.dumps(r) + "\n" for r in table.to_pylist()).encode()
    r = requests.post(
        f"{base}/v1/audience-jobs",
        data=body,
        headers={**auth("alice"), "Content-Type": "application/octet-stream"},
        params={"format": fmt, "seed_list_id": "my-list"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    seeds = pq.read_table(make_app.run_dir / "audience_jobs" / r.json()["job_id"] / "seeds.parquet")
    assert set(seeds.column("seed_list_id").to_pylist()) == {"my-list"}
    assert seeds.column("user_id").to_pylist() == table.column("user_id").to_pylist()


@pytest.mark.parametrize(
    ("body", "ctype", "params", "status", "words"),
    [
        (b"seed_list_id,name\nA,x\n", "text/csv", {}, 400, "no user_id column"),
        (b"", "text/csv", {}, 400, "empty"),
        (b"user_id\n", "text/csv", {}, 400, "no rows"),
        (b"this is not parquet", "application/vnd.apache.parquet", {}, 400, "not a readable parquet file"),
        (b"seed_list_id,user_id\nA,1\n,2\n", "text/csv", {}, 400, "without a seed_list_id"),
        (b"seed_list_id,user_id\nA,1\nB,2\nC,3\n", "text/csv", {}, 400, "more than 2 seed lists"),
        (b'{"user_id": 1}\n{"user_id": "x", \n', "application/x-ndjson", {}, 400, "not a readable jsonl file"),
        (b"user_id\n1\n", "application/octet-stream", {}, 415, "cannot tell the upload's format"),
        (b"user_id\n1\n", "text/csv", {"audience_size": 5}, 422, "privacy floor"),
    ],
)
def test_a_bad_upload_is_refused_with_one_line_and_leaves_nothing(make_app, body, ctype, params, status, words):
    api = FakeJobsApi()
    base = make_app(api, max_lists=2)
    r = post(base, body, ctype=ctype, **params)
    assert r.status_code == status, r.text
    assert words in one_line_error(r)
    assert api.submitted == []
    root = make_app.run_dir / "audience_jobs"
    assert not root.exists() or not [p for p in root.iterdir() if p.name.startswith("aj-")]
    assert not root.exists() or not list((root / "_active").rglob("aj-*")), "a refused upload still counts"


def test_the_upload_limit_is_enforced_while_streaming_and_the_body_limit_does_not_apply(make_app):
    api = FakeJobsApi()
    base = make_app(api, max_upload_bytes=60_000)
    big = csv_bytes(9_000)  # about 70 KB: over the upload limit
    assert len(big) > 60_000

    def chunked():  # no Content-Length: only counting the bytes as they arrive can stop it
        for i in range(0, len(big), 8_192):
            yield big[i : i + 8_192]

    r = post(base, chunked())
    assert r.status_code == 413 and "larger than the limit of 60000 bytes" in one_line_error(r)
    r = post(base, big)  # with Content-Length: refused before reading
    assert r.status_code == 413 and "60000" in one_line_error(r)
    under = csv_bytes(5_000)  # over the app's 20 KB max_body_bytes, under the upload limit
    assert 20_000 < len(under) < 60_000
    r = post(base, under)
    assert r.status_code == 202, r.text
    assert len(api.submitted) == 1


# -- idempotency and limits ------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_gets_the_same_job(make_app):
    api = FakeJobsApi()
    base = make_app(api, max_jobs_per_key=5)
    first = post(base, csv_bytes(20), key="order-17")
    again = post(base, b"not even read", key="order-17")
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.headers["Idempotent-Replayed"] == "true"
    other_key = post(base, csv_bytes(20), key="order-18")
    other_caller = post(base, csv_bytes(20), who="bob", key="order-17")  # keys are per API key
    ids = {first.json()["job_id"], other_key.json()["job_id"], other_caller.json()["job_id"]}
    assert len(ids) == 3 and len(api.submitted) == 3


def test_a_failed_upload_does_not_use_up_its_idempotency_key(make_app):
    api = FakeJobsApi()
    base = make_app(api)
    assert post(base, b"nothing,useful\n1,2\n", key="k1").status_code == 400
    r = post(base, csv_bytes(20), key="k1")
    assert r.status_code == 202 and "Idempotent-Replayed" not in r.headers


def test_the_per_key_limit_on_queued_and_running_jobs(make_app):
    api = FakeJobsApi()
    base = make_app(api, max_jobs_per_key=2)
    a = post(base, csv_bytes(20)).json()["job_id"]
    b = post(base, csv_bytes(20)).json()["job_id"]
    play_job(api, b)  # running
    r = post(base, csv_bytes(20))
    assert r.status_code == 429
    assert one_line_error(r) == (
        "the key 'alice' has 2 audience job(s) queued or running, the limit is 2: retry when one has finished"
    )
    assert post(base, csv_bytes(20), who="bob").status_code == 202  # another key has its own count
    play_job(api, a, audience_table(20))  # one finishes: room again
    assert post(base, csv_bytes(20)).status_code == 202
    assert len(api.submitted) == 4


# -- states ----------------------------------------------------------------------------------------


def test_a_job_goes_queued_running_succeeded(make_app):
    api = FakeJobsApi()
    base = make_app(api)
    job_id = post(base, csv_bytes(20)).json()["job_id"]
    url = f"{base}/v1/audience-jobs/{job_id}"
    assert requests.get(url, headers=auth("alice")).json()["state"] == "queued"
    api.jobs[f"audience-{job_id}"] = RayJob("RUNNING")  # started, nothing written yet
    assert requests.get(url, headers=auth("alice")).json()["progress"]["phase"] == "starting"
    play_job(api, job_id)
    running = requests.get(url, headers=auth("alice")).json()
    assert running["state"] == "running"
    assert running["progress"] == {"phase": "scoring", "fraction": 0.5, "users_scored": 300, "users_total": 600}
    play_job(api, job_id, audience_table(20))
    done = requests.get(url, headers=auth("alice")).json()
    assert done["state"] == "succeeded" and done["result"]["audience_rows"] == 20 and done["error"] is None


def test_a_job_that_died_without_a_word_is_failed_with_its_last_error_line(make_app):
    api = FakeJobsApi()
    base = make_app(api)
    job_id = post(base, csv_bytes(20)).json()["job_id"]
    api.jobs[f"audience-{job_id}"] = RayJob("FAILED", "Job entrypoint command failed with exit code 2")
    api.logs[f"audience-{job_id}"] = "12:00 INFO starting\nerror: seed lists x: no seed list has at least 3 known\n"
    got = requests.get(f"{base}/v1/audience-jobs/{job_id}", headers=auth("alice")).json()
    assert got["state"] == "failed" and got["error"] == "seed lists x: no seed list has at least 3 known"
    status = json.loads((make_app.run_dir / "audience_jobs" / job_id / "status.json").read_text())
    assert status["state"] == "failed", "the ending is recorded, not asked again"
    r = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"))
    assert r.status_code == 409 and "is failed: seed lists x" in one_line_error(r)


def test_a_job_the_cluster_forgot_is_failed_after_a_grace_period(make_app, monkeypatch):
    api = FakeJobsApi()
    base = make_app(api)
    job_id = post(base, csv_bytes(20)).json()["job_id"]
    del api.jobs[f"audience-{job_id}"]
    url = f"{base}/v1/audience-jobs/{job_id}"
    assert requests.get(url, headers=auth("alice")).json()["state"] == "queued"  # just recorded: wait
    monkeypatch.setattr("serve.audience_jobs.NOT_SUBMITTED_GRACE_S", 0)
    got = requests.get(url, headers=auth("alice")).json()
    assert got["state"] == "failed" and "does not know Ray job" in got["error"]


def test_the_jobs_api_down_is_503_and_the_job_does_not_count(make_app):
    api = FakeJobsApi()
    base = make_app(api, max_jobs_per_key=1)
    api.down = True
    r = post(base, csv_bytes(20))
    assert r.status_code == 503 and "Connection refused" in one_line_error(r)
    api.down = False
    assert post(base, csv_bytes(20)).status_code == 202  # the failed submission left the limit free


# -- results ---------------------------------------------------------------------------------------


@pytest.fixture
def finished(make_app):
    api = FakeJobsApi()
    base = make_app(api)
    job_id = post(base, csv_bytes(20)).json()["job_id"]
    table = audience_table(53)
    play_job(api, job_id, table, files=3, group=7)  # 3 files of 18, 18, 17 rows in row groups of 7
    return base, job_id, table


def test_results_page_by_an_opaque_cursor_across_files_and_row_groups(finished):
    base, job_id, table = finished
    rows, cursor, pages, cursors = [], None, 0, []
    while True:
        params = {"limit": 8} | ({"cursor": cursor} if cursor else {})
        r = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"), params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 53 and len(page["rows"]) <= 8
        rows += page["rows"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
        assert not cursor.isdigit()
    assert pages == 7 and rows == table.to_pylist()
    default = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice")).json()
    assert default["rows"] == rows[:10]  # jobs.default_page_size
    again = requests.get(
        f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"), params={"cursor": cursors[2], "limit": 30}
    ).json()
    assert again["rows"] == rows[24:53] and again["next_cursor"] is None  # a cursor can be used again


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"cursor": "bm90IGEgY3Vyc29y"}, 400, "not a cursor this API returned"),
        ({"cursor": "eyJmIjowLCJyIjo1LCJ2IjoiMDAwMCJ9"}, 400, "belongs to other results"),
        ({"limit": 41}, 422, "more than the limit of 40"),
    ],
)
def test_bad_paging_is_refused_with_one_line(finished, params, status, words):
    base, job_id, _ = finished
    r = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"), params=params)
    assert r.status_code == status and words in one_line_error(r)


def test_downloads_as_parquet_and_csv_hold_every_row(finished):
    base, job_id, table = finished
    url = f"{base}/v1/audience-jobs/{job_id}/download"
    p = requests.get(url, headers=auth("alice"), params={"format": "parquet"})
    assert p.status_code == 200 and p.headers["content-type"] == "application/vnd.apache.parquet"
    assert f'filename="{job_id}.parquet"' in p.headers["content-disposition"]
    assert pq.read_table(io.BytesIO(p.content)).equals(table)
    c = requests.get(url, headers=auth("alice"), params={"format": "csv"})
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    assert pacsv.read_csv(io.BytesIO(c.content)).to_pylist() == table.to_pylist()


def test_only_the_key_that_made_a_job_sees_it_and_admins(finished):
    base, job_id, _ = finished
    for path in ("", "/results", "/download"):
        assert requests.get(f"{base}/v1/audience-jobs/{job_id}{path}", headers=auth("bob")).status_code == 404
        assert requests.get(f"{base}/v1/audience-jobs/{job_id}{path}", headers=auth("ops")).status_code == 200
        assert requests.get(f"{base}/v1/audience-jobs/{job_id}{path}", headers=auth("ranker")).status_code == 403
        assert requests.get(f"{base}/v1/audience-jobs/{job_id}{path}").status_code == 401
    assert requests.get(f"{base}/v1/audience-jobs/aj-00000000000000000000", headers=auth("alice")).status_code == 404
    assert requests.get(f"{base}/v1/audience-jobs/..%2Fmanifest.json", headers=auth("ops")).status_code == 404


def test_a_new_app_over_the_same_storage_answers_for_the_old_ones_jobs(make_app, finished):
    _, job_id, table = finished
    api = FakeJobsApi()
    api.jobs[f"audience-{job_id}"] = RayJob("SUCCEEDED")
    base = make_app(api)  # a restarted replica: nothing in memory
    got = requests.get(f"{base}/v1/audience-jobs/{job_id}", headers=auth("alice")).json()
    assert got["state"] == "succeeded"
    page = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"), params={"limit": 40})
    assert page.json()["rows"] == table.to_pylist()[:40]


# -- the Jobs API client ---------------------------------------------------------------------------


def test_job_state_and_results_live_in_object_storage(make_app, s3):
    """With the run on S3, every piece of a job's state is there: a second app (a restarted replica)
    over the same bucket reports the job and pages and downloads its results."""
    api = FakeJobsApi()
    root = s3.uri("jobs-run")
    r = post(make_app(api, run_uri=root), csv_bytes(20))
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    args = api.args(job_id)
    assert args["status"].startswith(f"{root}/audience_jobs/") and args["output"].startswith(f"{root}/audience_jobs/")
    table = audience_table(30)
    play_job(api, job_id, table, files=2, group=8)
    base = make_app(api, run_uri=root)
    job = requests.get(f"{base}/v1/audience-jobs/{job_id}", headers=auth("alice")).json()
    assert job["state"] == "succeeded" and job["result"]["audience_rows"] == 30
    rows, cursor = [], None
    while True:
        params = {"limit": 8} | ({"cursor": cursor} if cursor else {})
        page = requests.get(f"{base}/v1/audience-jobs/{job_id}/results", headers=auth("alice"), params=params).json()
        rows += page["rows"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert rows == table.to_pylist()
    r = requests.get(f"{base}/v1/audience-jobs/{job_id}/download", headers=auth("alice"), params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(r.content)).equals(table)
