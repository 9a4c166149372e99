"""Audience jobs: a seed list uploaded over HTTP, expanded by a Ray job on the cluster, read back in pages.

The ingress never expands an uploaded list itself: it streams the upload to storage, converts
it (batch by batch) to ``seeds.parquet``, and submits ``python -m ray_jobs.expand ... --output
... --status ...`` through the Jobs API (Ray's JobSubmissionClient, with Ray's token). Every
piece of a job's state lives in storage under ``<run_dir>/audience_jobs/`` (or ``jobs.root``),
so a job outlives the replica that accepted it and any replica answers for it::

    <job_id>/request.json     who asked, what was uploaded, the Ray submission id
    <job_id>/status.json      queued | running (phase, users scored) | succeeded (result) | failed (error)
    <job_id>/seeds.parquet    the uploaded lists (seed_list_id, user_id)
    <job_id>/output/          the job's own run directory: audiences/ with a manifest, metrics
    _idempotency/<sha256>     (key name, Idempotency-Key) -> job id: a retried POST gets the same job
    _active/<key>/<job_id>    the key's queued and running jobs, for the per-key limit

The job writes status.json as it goes; a reader also asks the Jobs API, so a job that died
without a word (its node lost, stopped) is reported failed with a one-line reason. Results are
read by an opaque cursor over the job's immutable output files (serve/job_results.py). Routes: serve/jobs_routes.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import Field, model_validator

from reco import artifacts
from reco.errors import DataError, RecoError, first_line
from reco.expansion import job_status
from reco.expansion.job_status import FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL
from reco.run_dir import RunDir
from reco.schema import StrictModel
from reco.storage import Location, is_uri, locate
from serve.http_errors import NotFound
from serve.job_results import ResultFiles, read_page, stream
from serve.jobs_api import JobsApi, JobsApiError
from serve.seed_uploads import Format, convert_upload

log = logging.getLogger("serve.audience_jobs")

JOB_ID = re.compile(r"^aj-[0-9a-f]{20}$")
NOT_SUBMITTED_GRACE_S = 60  # a queued job the cluster does not know yet, this long after it was recorded


def default_jobs_address() -> str:
    """The Jobs API: RAY_API_SERVER_ADDRESS or RAY_ADDRESS when it is an http(s) URL, else the local dashboard."""
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(name, "")
        if value.startswith(("http://", "https://")):
            return value.rstrip("/")
    return "http://127.0.0.1:8265"


class AudienceJobSettings(StrictModel):
    """How audience jobs run (the ``jobs`` section of the Serve settings): the Jobs API, the limits
    a caller meets, and the expand job's command line."""

    address: str = Field(
        default_factory=default_jobs_address,
        description="The cluster's dashboard URL, where the Jobs API answers (default: RAY_ADDRESS when it is "
        "http(s)://..., else http://127.0.0.1:8265).",
    )
    root: str | None = Field(
        None, description="Where jobs' state and results live (local path or URI); None: <run_dir>/audience_jobs."
    )
    max_upload_bytes: int = Field(512 * 2**20, ge=1_024, description="Larger uploads are cut off with 413.")
    max_lists: int = Field(1_000, ge=1, description="Most seed lists one upload may hold.")
    max_jobs_per_key: int = Field(2, ge=1, description="Queued and running jobs one API key may have (429 above).")
    audience_size: int = Field(
        1_000, ge=1, description="Users per list when the upload does not say (at least the app's min_audience_size)."
    )
    max_audience_size: int = Field(100_000, ge=1, description="Most users a job may return per list.")
    default_page_size: int = Field(1_000, ge=1)
    max_page_size: int = Field(10_000, ge=1)
    config: str = Field(
        "configs/local.yaml",
        description="The expand job's --config: a path where the job runs (its working_dir, or absolute).",
    )
    overrides: list[str] = Field(default_factory=list, description="More --set key=value for every job.")
    python: str = Field("python", description="The interpreter the job's entrypoint runs, on the cluster.")
    working_dir: str | None = Field(None, description="The job's runtime_env working_dir; None: none is uploaded.")
    env_vars: dict[str, str] = Field(default_factory=dict, description="The job's runtime_env env_vars.")
    upload_stale_s: float = Field(
        3_600, gt=0, description="An upload reserved this long ago and never finished no longer counts as a job."
    )

    @model_validator(mode="after")
    def _pages(self) -> AudienceJobSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("jobs.default_page_size must be at most jobs.max_page_size")
        if self.audience_size > self.max_audience_size:
            raise ValueError("jobs.audience_size must be at most jobs.max_audience_size")
        return self


# -- errors the routes turn into answers ----------------------------------------------------------


class TooManyJobs(RecoError):
    """The key already has its most queued and running jobs (429)."""


class NotReady(RecoError):
    """Results of a job that has not succeeded (409)."""


# -- the store --------------------------------------------------------------------------------------


def new_job_id() -> str:
    return "aj-" + secrets.token_hex(10)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class AudienceJobs:
    """Audience jobs of one run: their state in storage, their Ray jobs through ``api``.

    Every method is blocking I/O (storage, the Jobs API): the routes call them in a worker thread.
    Nothing is touched before the first call, so building the app costs nothing. ``min_seeds``:
    the fewest known seeds a list needs (the app's privacy floor), passed to every job.
    """

    def __init__(self, settings: AudienceJobSettings, run_dir: str, api: JobsApi, min_seeds: int | None = None):
        self.settings, self.api, self.min_seeds = settings, api, min_seeds
        self.run_dir = run_dir if is_uri(run_dir) else os.path.abspath(run_dir)
        root = settings.root or f"{self.run_dir.rstrip('/')}/audience_jobs"
        self.root_uri = root if is_uri(root) else os.path.abspath(root)
        self._root: Location | None = None
        self._results: dict[str, ResultFiles] = {}
        self._lock = threading.Lock()

    # -- where things are ---------------------------------------------------------------------
    @property
    def root(self) -> Location:
        if self._root is None:
            self._root = locate(self.root_uri, "audience jobs root")
        return self._root

    def _loc(self, *parts: str) -> Location:
        loc = self.root
        for p in parts:
            loc = loc.child(p)
        return loc

    def _uri(self, *parts: str) -> str:
        """A place as the job on the cluster names it: a URI, or an absolute local path."""
        return "/".join([self.root_uri.rstrip("/"), *parts])

    def _active_dir(self, owner: str) -> Location:
        return self._loc("_active", _digest(owner)[:32])

    # -- creating ---------------------------------------------------------------------------
    def replay(self, owner: str, key: str) -> dict | None:
        """The job an earlier POST with this Idempotency-Key made, as its view; None if none did."""
        rec = job_status.read_json(self._loc("_idempotency", _digest(owner, key) + ".json"))
        return self.view(rec["job_id"], owner) if rec else None

    def reserve(self, owner: str) -> str:
        """A new job id for ``owner``, counted against the key's limit from now on; TooManyJobs over it."""
        active = self.active(owner)
        limit = self.settings.max_jobs_per_key
        if len(active) >= limit:
            raise TooManyJobs(
                f"the key {owner!r} has {len(active)} audience job(s) queued or running, the limit is {limit}: "
                "retry when one has finished"
            )
        job_id = new_job_id()
        job_status.write_json(self._active_dir(owner).child(job_id), {"since": time.time()})
        return job_id

    def active(self, owner: str) -> list[str]:
        """The owner's queued and running jobs (an upload in progress counts); finished ones are forgotten here."""
        try:
            markers = self._active_dir(owner).files()
        except DataError:  # no folder yet
            markers = []
        out = []
        for marker in markers:
            job_id = marker.name
            req = job_status.read_json(self._loc(job_id, "request.json"))
            if req is None:  # still uploading, or abandoned by a replica that died mid-upload
                since = (job_status.read_json(marker) or {}).get("since", 0)
                if time.time() - since < self.settings.upload_stale_s:
                    out.append(job_id)
                else:
                    marker.remove()
                continue
            if self.refresh(job_id, req)["state"] in TERMINAL:
                marker.remove()
            else:
                out.append(job_id)
        return out

    def release(self, owner: str, job_id: str) -> None:
        self._active_dir(owner).child(job_id).remove()

    def upload_target(self, job_id: str, fmt: Format) -> Location:
        loc = self._loc(job_id, f"upload.{fmt}")
        loc.fs.create_dir(self._loc(job_id).path, recursive=True)
        return loc

    def abandon(self, owner: str, job_id: str) -> None:
        """Forget a job whose upload failed: its files and its place in the owner's count."""
        with contextlib.suppress(OSError):
            self.root.fs.delete_dir(self._loc(job_id).path)
        self.release(owner, job_id)

    def accept(
        self,
        owner: str,
        job_id: str,
        fmt: Format,
        upload_bytes: int,
        default_list_id: str,
        audience_size: int,
        idempotency_key: str | None,
    ) -> dict:
        """Convert the stored upload, record the job, submit it; its view (queued). DataError: a bad upload."""
        upload = self._loc(job_id, f"upload.{fmt}")
        summary = convert_upload(
            upload, self._loc(job_id, "seeds.parquet"), fmt, default_list_id, self.settings.max_lists
        )
        upload.remove()
        submission_id = f"audience-{job_id}"
        entrypoint = self.entrypoint(job_id, audience_size)
        request = {
            "job_id": job_id,
            "owner": owner,
            "created_at": job_status.now(),
            "submission_id": submission_id,
            "format": fmt,
            "upload_bytes": upload_bytes,
            "rows": summary.rows,
            "lists": len(summary.lists),
            "list_ids": summary.lists[:20],
            "audience_size": audience_size,
            "entrypoint": entrypoint,
        }
        status = self._loc(job_id, "status.json")
        job_status.write_status(status, {"state": QUEUED})
        job_status.write_json(self._loc(job_id, "request.json"), request)
        runtime_env: dict[str, Any] = {}
        if self.settings.env_vars:
            runtime_env["env_vars"] = dict(self.settings.env_vars)
        if self.settings.working_dir:
            runtime_env["working_dir"] = self.settings.working_dir
        try:
            self.api.submit(submission_id, entrypoint, runtime_env, {"audience_job": job_id, "owner": owner})
        except JobsApiError as e:
            job_status.write_status(status, {"state": FAILED, "error": str(e)})
            self.release(owner, job_id)
            raise
        log.info("audience job %s for %s: %d row(s), %d list(s), submitted", job_id, owner, summary.rows,
                 len(summary.lists))  # fmt: skip
        if idempotency_key is not None:
            job_status.write_json(
                self._loc("_idempotency", _digest(owner, idempotency_key) + ".json"), {"job_id": job_id}
            )
        return self.view(job_id, owner)

    def entrypoint(self, job_id: str, audience_size: int) -> str:
        """``python -m ray_jobs.expand --config ... --set ... --output ... --status ...`` for this job
        (the job's own settings after the operator's overrides, so they win)."""
        s = self.settings
        sets = [
            *s.overrides,
            f"run_dir={self.run_dir}",
            f"expansion.seed_lists={self._uri(job_id, 'seeds.parquet')}",
            f"expansion.audience_size={audience_size}",
        ]
        if self.min_seeds is not None:
            sets.append(f"expansion.min_seeds={self.min_seeds}")
        args = [s.python, "-m", "ray_jobs.expand", "--config", s.config]
        for kv in sets:
            args += ["--set", kv]
        args += ["--output", self._uri(job_id, "output"), "--status", self._uri(job_id, "status.json")]
        return " ".join(shlex.quote(a) for a in args)

    # -- reading ------------------------------------------------------------------------------
    def request(self, job_id: str, owner: str, admin: bool = False) -> dict:
        """The job's request record, if ``owner`` may see it (its creator, or an admin); else NotFound."""
        req = job_status.read_json(self._loc(job_id, "request.json")) if JOB_ID.match(job_id) else None
        if req is None or (req.get("owner") != owner and not admin):
            raise NotFound(f"no audience job {job_id}")
        return req

    def refresh(self, job_id: str, req: dict) -> dict:
        """The job's status, from its status.json and the Jobs API; a newly ended job is recorded so."""
        status_loc = self._loc(job_id, "status.json")
        st = job_status.read_status(status_loc) or {"state": QUEUED}
        if st["state"] in TERMINAL:
            return st
        try:
            ray_job = self.api.info(req["submission_id"])
        except JobsApiError as e:
            log.warning("audience job %s: %s", job_id, e)
            return st  # as last recorded; the next read asks again
        # read again after asking Ray: a job that ended wrote its last status before it exited
        st = job_status.read_status(status_loc) or st
        if st["state"] in TERMINAL:
            ended = st
        elif ray_job is None:
            age = time.time() - _epoch(req.get("created_at"))
            if age < NOT_SUBMITTED_GRACE_S:
                return st
            ended = {"state": FAILED, "error": f"the cluster does not know Ray job {req['submission_id']} (restarted?)"}
        elif ray_job.status == "PENDING":
            return st
        elif ray_job.status == "RUNNING":
            return st if st["state"] == RUNNING else {**st, "state": RUNNING, "phase": "starting"}
        elif ray_job.status == "SUCCEEDED":
            ended = {**st, "state": FAILED, "error": "the job ended without recording its result"}
        else:  # FAILED, STOPPED
            error = None
            with contextlib.suppress(JobsApiError):
                error = self.api.error_line(req["submission_id"])
            error = error or first_line(ray_job.message or f"the Ray job ended {ray_job.status}")
            ended = {**st, "state": FAILED, "error": error}
        if ended is not st:
            job_status.write_status(status_loc, ended)
        return ended

    def view(self, job_id: str, owner: str, admin: bool = False) -> dict:
        """What GET /v1/audience-jobs/{id} answers."""
        req = self.request(job_id, owner, admin)
        st = self.refresh(job_id, req)
        out: dict[str, Any] = {
            "job_id": job_id,
            "state": st["state"],
            "created_at": req["created_at"],
            "updated_at": st.get("updated_at"),
            "upload": {k: req[k] for k in ("format", "upload_bytes", "rows", "lists", "list_ids")},
            "audience_size": req.get("audience_size"),
            "progress": None,
            "result": None,
            "error": None,
        }
        if st["state"] == RUNNING:
            out["progress"] = {
                "phase": st.get("phase"),
                "fraction": st.get("progress"),
                "users_scored": st.get("users_scored"),
                "users_total": st.get("users_total"),
            }
        elif st["state"] == SUCCEEDED:
            out["result"] = st.get("result")
        elif st["state"] == FAILED:
            # the job names its input by path: the client knows it as its upload
            error = str(st.get("error") or "failed").splitlines()[0]
            out["error"] = error.replace(self._uri(job_id, "seeds.parquet"), "the uploaded seed list")
        return out

    def results(self, job_id: str, owner: str, admin: bool = False) -> ResultFiles:
        """A succeeded job's audience files (verified against the output's manifest once per replica)."""
        with self._lock:
            cached = self._results.get(job_id)
        if cached is not None:
            self.request(job_id, owner, admin)  # the caller may still not see it
            return cached
        v = self.view(job_id, owner, admin)
        if v["state"] != SUCCEEDED:
            why = f": {v['error']}" if v["error"] else ""
            raise NotReady(f"audience job {job_id} is {v['state']}{why}; its results are read once it has succeeded")
        out = RunDir(self._uri(job_id, "output"))
        entry = out.artifact(artifacts.AUDIENCES)  # every file's size and sha256
        paths = out.files(artifacts.AUDIENCES)
        groups = []
        for path in paths:
            meta = pq.ParquetFile(out.fs.open_input_file(path)).metadata
            groups.append([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        version = _digest(*(f["sha256"] for _, f in sorted(entry["files"].items())))[:16]
        files = ResultFiles(out.fs, paths, groups, sum(map(sum, groups)), version)
        with self._lock:
            if len(self._results) >= 64:
                self._results.pop(next(iter(self._results)))
            self._results[job_id] = files
        return files

    def page(self, job_id: str, owner: str, cursor: str | None, limit: int, admin: bool = False) -> dict:
        """``limit`` result rows from ``cursor`` (None: the first), and the cursor of the next page (None: no more)."""
        return {"job_id": job_id, **read_page(self.results(job_id, owner, admin), cursor, limit)}

    def download(
        self, job_id: str, owner: str, fmt: Literal["parquet", "csv"], admin: bool = False
    ) -> tuple[int, Iterator[bytes]]:
        """(rows, every result row as one Parquet or CSV file, produced a row group at a time)."""
        files = self.results(job_id, owner, admin)
        return files.total, stream(files, fmt)


def _epoch(iso: str | None) -> float:
    try:
        return dt.datetime.fromisoformat(iso).timestamp() if iso else 0.0
    except ValueError:
        return 0.0
