"""An audience job's progress: its status object (reco/expansion/job_status.py) kept up to date.

The expand job reports its phase and fraction as it goes; while scoring, the actors count the
users (or lists) they have done on a small counter actor that a thread polls.
"""

from __future__ import annotations

import logging
import threading

import ray

from reco.expansion import job_status

log = logging.getLogger("ray_jobs.expand")


@ray.remote(num_cpus=0)
class UsersScored:
    """Users scored so far, summed over the scoring actors (a retried batch counts twice; the
    reader caps the count at the number of users)."""

    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n

    def value(self) -> int:
        return self.n


class Progress:
    """An audience job's status object (reco/expansion/job_status.py), kept up to date; inert without a URI.

    The fraction is a rough guide by phase: reading and fitting the lists take the first tenth,
    scoring (by users scored) up to 95 %, writing the audience the rest.
    """

    POLL_S = 2.0

    def __init__(self, uri: str | None):
        self.uri = uri
        self.fields: dict = {"state": job_status.RUNNING, "phase": "starting", "progress": 0.0}

    def update(self, final: bool = False, **fields) -> None:
        """Record ``fields``; a failed write is logged and the job goes on (a status is a report),
        unless the status is ``final``: a job whose ending cannot be recorded fails."""
        self.fields.update(fields)
        if self.uri:
            try:
                job_status.write_status(self.uri, self.fields)
            except OSError as e:
                if final:
                    raise
                log.warning("cannot write the job status to %s: %s", self.uri, str(e).splitlines()[0])

    def phase(self, name: str, fraction: float, **fields) -> None:
        self.update(phase=name, progress=round(fraction, 3), **fields)

    def while_scoring(self, total: int, unit: str = "users") -> _ScoringReporter:
        return _ScoringReporter(self, total, unit)


class _ScoringReporter:
    """``with progress.while_scoring(n) as counter:`` polls ``counter`` on a thread and reports the
    users (or, on the ensemble path, lists) scored."""

    def __init__(self, progress: Progress, total: int, unit: str = "users"):
        self.progress, self.total, self.unit = progress, total, unit
        self.counter = UsersScored.remote() if progress.uri else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="expand-progress", daemon=True)

    def __enter__(self) -> ray.actor.ActorHandle | None:
        self.progress.phase("scoring", 0.1, **{f"{self.unit}_scored": 0, f"{self.unit}_total": self.total})
        if self.counter is not None:
            self._thread.start()
        return self.counter

    def _poll(self) -> None:
        last = -1
        while not self._stop.wait(Progress.POLL_S):
            try:
                n = min(int(ray.get(self.counter.value.remote(), timeout=10)), self.total)
            except Exception as e:  # progress is best effort; the scoring decides the job
                log.debug("progress poll failed: %s", e)
                continue
            if n != last:
                last = n
                self.progress.phase("scoring", 0.1 + 0.85 * n / max(self.total, 1), **{f"{self.unit}_scored": n})

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        if self.counter is not None:
            ray.kill(self.counter)
        if exc[0] is None:
            self.progress.phase("writing", 0.95, **{f"{self.unit}_scored": self.total})
