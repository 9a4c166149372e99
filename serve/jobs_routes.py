"""The HTTP routes of audience jobs (serve/audience_jobs.py): upload, status, pages of results, download.

- ``POST /v1/audience-jobs``: the body is the seed-list file itself (CSV, Parquet or JSON lines),
  streamed to storage and cut off with 413 past ``jobs.max_upload_bytes``; 202 with the job.
  ``Idempotency-Key`` makes a retry answer the first POST's job (its body is not read again).
- ``GET /v1/audience-jobs/{job_id}``: queued, running (progress), succeeded (result) or failed (error).
- ``GET /v1/audience-jobs/{job_id}/results?cursor=&limit=``: a page of rows and the next cursor.
- ``GET /v1/audience-jobs/{job_id}/download?format=parquet|csv``: every row, streamed.

Every route needs the ``expand`` scope; a job is visible only to the key that made it (and
admins), so another key gets 404. The per-key limit on queued and running jobs answers 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_json
from starlette.concurrency import iterate_in_threadpool

from reco.errors import DataError
from serve.audience_jobs import AudienceJobs, NotReady, TooManyJobs
from serve.auth import Caller, require
from serve.http_errors import OutOfRange, TooLarge, request_id_of, responses
from serve.jobs_api import JobsApi, JobsApiError, RayJobsApi
from serve.seed_uploads import Format, upload_format
from serve.settings import ServeSettings

log = logging.getLogger("serve.audience_jobs")
ExpandCaller = Annotated[Caller, Depends(require("expand"))]
UPLOAD_BODY = {
    "required": True,
    "description": "The seed-list file itself: columns user_id and, optionally, seed_list_id.",
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("text/csv", "application/vnd.apache.parquet", "application/x-ndjson")
    },
}
FLUSH_BYTES = 1 << 20  # upload bytes gathered before each write to storage


class JobUpload(BaseModel):
    format: str
    upload_bytes: int
    rows: int
    lists: int
    list_ids: list[str]  # the first 20


class JobProgress(BaseModel):
    phase: str | None
    fraction: float | None
    users_scored: int | None
    users_total: int | None


class AudienceJob(BaseModel):
    """An audience job as GET /v1/audience-jobs/{job_id} (and the POST's 202) answers it."""

    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    created_at: str
    updated_at: str | None
    upload: JobUpload
    audience_size: int | None
    progress: JobProgress | None  # while running
    result: dict | None  # once succeeded: lists, rejected, unknown_ids, users, audience_rows
    error: str | None  # once failed: one line


class AudienceRow(BaseModel):
    seed_list_id: str
    user_id: str
    score: float
    rank: int
    source: str


class AudienceJobPage(BaseModel):
    job_id: str
    total: int
    rows: list[AudienceRow]
    next_cursor: str | None  # pass as ?cursor= for the next page; None: this was the last


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """Straight to JSON bytes, as serve/api.py answers (no re-validation of a page of rows)."""
    return Response(content=to_json(body), status_code=status, media_type="application/json", headers=headers)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple, asyncio.Lock] = {}
        self._users: Counter = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple):
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                self._locks.pop(key, None)


def _admin(caller: Caller) -> bool:
    return caller.may("admin")


def _audit(request: Request, caller: Caller, route: str, job_id: str, asked: int, returned: int) -> None:
    """One audit-log row per page or download of a job's audience (serve/audit.py), as for the batch audiences."""
    audit = getattr(request.app.state, "audit", None)
    if audit is not None:
        audit.record(
            request_id=request_id_of(request.scope),
            key_name=caller.name,
            route=route,
            seed_list_id=job_id,
            audience_size_asked=asked,
            audience_size_returned=returned,
        )


def _http(status: int, e: Exception) -> HTTPException:
    return HTTPException(status_code=status, detail=str(e).splitlines()[0])


def audience_jobs_router(settings: ServeSettings, api: JobsApi | None = None) -> APIRouter:
    """The routes over the run in ``settings``; ``api`` is the Jobs API (Ray's, at ``settings.jobs.address``)."""
    cfg = settings.jobs
    jobs = AudienceJobs(cfg, settings.run_dir, api or RayJobsApi(cfg.address), min_seeds=settings.min_seed_ids)
    locks = KeyedLocks()
    router = APIRouter(prefix="/v1/audience-jobs", tags=["audience jobs"])

    async def run(fn, *args):
        """A blocking store call in a worker thread, its errors as HTTP answers."""
        try:
            return await asyncio.to_thread(fn, *args)
        except TooManyJobs as e:
            raise _http(429, e) from None
        except NotReady as e:
            raise _http(409, e) from None
        except JobsApiError as e:
            raise _http(503, e) from None

    @router.post(
        "",
        status_code=202,
        response_model=AudienceJob,
        responses=responses(400, 413, 415, 429, 503),
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def create_audience_job(
        request: Request,
        caller: ExpandCaller,
        format: Annotated[Format | None, Query(description="csv, parquet or jsonl; else by Content-Type.")] = None,
        seed_list_id: Annotated[
            str, Query(min_length=1, max_length=200, description="The list's name when the file has no seed_list_id.")
        ] = "upload",
        audience_size: Annotated[int, Query(ge=1, description="Users per list.")] = cfg.audience_size,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)] = None,
    ) -> Response:
        """Upload a seed list (the body is the file); 202 with the job, which runs on the cluster."""
        if audience_size > cfg.max_audience_size:
            raise OutOfRange(f"audience_size is {audience_size}, more than the limit of {cfg.max_audience_size}")
        if audience_size < settings.min_audience_size:
            raise OutOfRange(
                f"audience_size is {audience_size}; the smallest audience served is {settings.min_audience_size} "
                "(min_audience_size, a privacy floor)"
            )
        try:
            fmt = upload_format(format, request.headers.get("content-type"))
        except DataError as e:
            raise _http(415, e) from None
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_upload_bytes:
            raise TooLarge(f"the upload is {int(length)} bytes, more than the limit of {cfg.max_upload_bytes}")
        if idempotency_key is None:
            view = await _create(request, caller, fmt, seed_list_id, audience_size, None)
            return _accepted(request, view)
        async with locks.hold(("idempotency", caller.name, idempotency_key)):
            view = await run(jobs.replay, caller.name, idempotency_key)
            if view is not None:
                return _accepted(request, view, replayed=True)
            view = await _create(request, caller, fmt, seed_list_id, audience_size, idempotency_key)
            return _accepted(request, view)

    async def _create(request, caller, fmt, seed_list_id, audience_size, key) -> dict:
        async with locks.hold(("owner", caller.name)):  # one count-and-reserve at a time per key in this replica
            job_id = await run(jobs.reserve, caller.name)
        try:
            received = await _receive(request, await run(jobs.upload_target, job_id, fmt))
            return await run(jobs.accept, caller.name, job_id, fmt, received, seed_list_id, audience_size, key)
        except HTTPException as e:
            if e.status_code == 503:  # recorded as failed, not abandoned
                raise
            await asyncio.to_thread(jobs.abandon, caller.name, job_id)
            raise
        except BaseException:
            await asyncio.to_thread(jobs.abandon, caller.name, job_id)
            raise

    async def _receive(request: Request, target) -> int:
        """Stream the body to ``target``, a megabyte at a time; TooLarge past the limit. Returns its bytes."""
        seen, pending = 0, bytearray()
        out = await asyncio.to_thread(target.fs.open_output_stream, target.path)
        try:
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > cfg.max_upload_bytes:
                    raise TooLarge(f"the upload is larger than the limit of {cfg.max_upload_bytes} bytes")
                pending += chunk
                if len(pending) >= FLUSH_BYTES:
                    await asyncio.to_thread(out.write, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(out.write, bytes(pending))
        finally:
            await asyncio.to_thread(out.close)
        if seen == 0:
            raise DataError("the upload is empty: send the seed-list file as the request body")
        return seen

    @router.get("/{job_id}", response_model=AudienceJob, responses=responses(404))
    async def get_audience_job(job_id: str, caller: ExpandCaller) -> Response:
        """The job's state: queued, running (with progress), succeeded (with its result) or failed (one line)."""
        return _json(await run(jobs.view, job_id, caller.name, _admin(caller)))

    @router.get("/{job_id}/results", response_model=AudienceJobPage, responses=responses(400, 404, 409))
    async def audience_job_results(
        job_id: str,
        request: Request,
        caller: ExpandCaller,
        cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page.")] = None,
        limit: Annotated[int, Query(ge=1)] = cfg.default_page_size,
    ) -> Response:
        """A page of the job's audience (seed_list_id, user_id, score, rank, source) and the next page's cursor."""
        if limit > cfg.max_page_size:
            raise OutOfRange(f"limit is {limit}, more than the limit of {cfg.max_page_size}")
        page = await run(jobs.page, job_id, caller.name, cursor, limit, _admin(caller))
        _audit(request, caller, "/v1/audience-jobs/{job_id}/results", job_id, limit, len(page["rows"]))
        return _json(page)

    @router.get(
        "/{job_id}/download",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "One file of every row (seed_list_id, user_id, score, rank, source).",
                "content": {"application/vnd.apache.parquet": {}, "text/csv": {}},
            },
            **responses(404, 409),
        },
    )
    async def download_audience_job(
        job_id: str,
        request: Request,
        caller: ExpandCaller,
        format: Annotated[Literal["parquet", "csv"], Query()] = "parquet",
    ) -> StreamingResponse:
        """Every row of the job's audience as one Parquet or CSV file, streamed."""
        total, chunks = await run(jobs.download, job_id, caller.name, format, _admin(caller))
        _audit(request, caller, "/v1/audience-jobs/{job_id}/download", job_id, total, total)
        media = "application/vnd.apache.parquet" if format == "parquet" else "text/csv"
        return StreamingResponse(
            iterate_in_threadpool(chunks),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{job_id}.{format}"'},
        )

    return router


def _accepted(request: Request, view: dict, replayed: bool = False) -> Response:
    headers = {"Location": str(request.url_for("get_audience_job", job_id=view["job_id"]))}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(view, 202, headers)
