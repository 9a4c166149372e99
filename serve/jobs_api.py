"""The Ray Jobs API as the audience jobs use it: submit, read status and logs, with Ray's token."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reco.errors import RecoError, first_line

log = logging.getLogger("serve.audience_jobs")
SUBMIT_RETRY_S = 20.0  # how long a submission is tried again after failures


class JobsApiError(RecoError):
    """The Jobs API cannot be reached or refused a call (503)."""


def ray_token() -> str | None:
    """Ray's auth token, found where Ray looks: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class RayJob:
    """What the Jobs API says of one submission."""

    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED
    message: str | None = None


class JobsApi(Protocol):
    """What the store needs of the cluster (a fake in the unit tests)."""

    def submit(self, submission_id: str, entrypoint: str, runtime_env: dict, metadata: dict[str, str]) -> None: ...
    def info(self, submission_id: str) -> RayJob | None: ...
    def error_line(self, submission_id: str) -> str | None: ...


_ENV_LOCK = threading.Lock()


class RayJobsApi:
    """The Jobs API through Ray's JobSubmissionClient, at an explicit address, with Ray's token.

    The client is made on first use (it checks the cluster's version over HTTP) and again after a
    failed call, so a restarted dashboard or a rotated token is picked up. The token goes only in
    the Authorization header; it is never logged.
    """

    def __init__(self, address: str):
        self.address = address.rstrip("/")
        self._client = None
        self._lock = threading.Lock()

    def _get(self):
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                token = ray_token()
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                # JobSubmissionClient prefers RAY_API_SERVER_ADDRESS and RAY_ADDRESS to its argument.
                with _ENV_LOCK, _without_env("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
                    self._client = JobSubmissionClient(self.address, headers=headers)
            return self._client

    def _call(self, what: str, fn):
        try:
            return fn(self._get())
        except Exception as e:
            with self._lock:
                self._client = None
            raise JobsApiError(f"the Jobs API at {self.address} failed to {what}: {first_line(e)}") from None

    def submit(self, submission_id: str, entrypoint: str, runtime_env: dict, metadata: dict[str, str]) -> None:
        """Submit, trying again for up to ``SUBMIT_RETRY_S`` (a dashboard just started answers "No available
        agent" for a while): safe, since the submission id is fixed and "already exists" means submitted."""
        deadline, pause = time.monotonic() + SUBMIT_RETRY_S, 0.5
        while True:
            try:
                self._call(
                    "submit the job",
                    lambda c: c.submit_job(
                        entrypoint=entrypoint, submission_id=submission_id, runtime_env=runtime_env, metadata=metadata
                    ),
                )
                return
            except JobsApiError as e:
                if "already exists" in str(e):  # an earlier try got through
                    return
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("%s; trying again in %.1fs", e, pause)
                time.sleep(pause)
                pause = min(pause * 2, 4.0)

    def info(self, submission_id: str) -> RayJob | None:
        try:
            details = self._call("read the job", lambda c: c.get_job_info(submission_id))
        except JobsApiError as e:
            if "404" in str(e) or "does not exist" in str(e):
                return None
            raise
        return RayJob(str(getattr(details.status, "value", details.status)), details.message)

    def error_line(self, submission_id: str) -> str | None:
        logs = self._call("read the job's logs", lambda c: c.get_job_logs(submission_id))
        return last_error_line(logs)


@contextlib.contextmanager
def _without_env(*names: str):
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def last_error_line(logs: str) -> str | None:
    """The job's own one-line error (``error: ...``, what every job prints last when it fails)."""
    for line in reversed(logs.splitlines()):
        if line.startswith("error: "):
            return line[len("error: ") :].strip()
    return None
