"""The status of one audience job: a small JSON object in storage, written by the job, read by the HTTP ingress.

The expand job run for one uploaded seed list (``python -m ray_jobs.expand ... --status URI``)
records here its state and progress as it goes, and its result or its one-line error at the end;
the ingress (serve/audience_jobs.py) reads it to answer ``GET /v1/audience-jobs/{id}``. Both sides
go through this module, so they agree on the format without importing each other, and the state
outlives any ingress replica. A local file is replaced by a rename and an object by one PUT, so a
reader never sees half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pyarrow.fs as pafs

from reco.storage import Location, locate

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
TERMINAL = frozenset({SUCCEEDED, FAILED})


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_status(target: str | Location, status: dict[str, Any]) -> None:
    """Replace the status object at ``target`` (a local path, URI or Location), ``updated_at`` set to now."""
    if status.get("state") not in STATES:
        raise ValueError(f"unknown audience job state {status.get('state')!r}")
    write_json(target, {**status, "updated_at": now()})


def read_status(target: str | Location) -> dict[str, Any] | None:
    """The status at ``target``; None if there is none yet."""
    return read_json(target)


def _located(target: str | Location) -> Location:
    return target if isinstance(target, Location) else locate(target, "audience job state")


def write_json(target: str | Location, obj: Any) -> None:
    """A small JSON object at ``target``, whole or not at all."""
    loc = _located(target)
    data = json.dumps(obj, indent=1, sort_keys=True).encode()
    parent = loc.path.rstrip("/").rsplit("/", 1)[0]
    loc.fs.create_dir(parent, recursive=True)
    if isinstance(loc.fs, pafs.LocalFileSystem):
        tmp = f"{loc.path}.tmp-{uuid.uuid4().hex[:8]}"
        with loc.fs.open_output_stream(tmp) as f:
            f.write(data)
        loc.fs.move(tmp, loc.path)
    else:
        with loc.fs.open_output_stream(loc.path) as f:  # one PUT: an object is replaced whole
            f.write(data)


def read_json(target: str | Location) -> Any | None:
    """The JSON object at ``target``; None if it does not exist."""
    loc = _located(target)
    try:
        with loc.fs.open_input_stream(loc.path) as f:
            return json.loads(f.read().decode())
    except FileNotFoundError:
        return None
