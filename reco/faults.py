"""Deliberate failures, for fault-tolerance tests and chaos drills on a cluster.

A job names points where it may die (``train_embeddings.step``, ``expand.score``); the config's
``faults.crash_once`` lists the points that should kill their worker process once per run
directory. The process exits hard (``os._exit``), exactly as an OOM kill or a lost node looks to
Ray, so what is tested is Ray's own recovery (Ray Train restoring from the latest checkpoint,
Ray Data retrying the task on a restarted actor), not an exception handler of ours. A marker
file under the run directory's ``_faults/`` makes each point fire once, across restarts.
"""

from __future__ import annotations

import logging
import os

import pyarrow.fs as pafs
from pydantic import Field

from reco.run_dir import resolve_filesystem
from reco.schema import StrictModel

log = logging.getLogger(__name__)
POINTS = ("train_embeddings.step", "expand.score")


class FaultConfig(StrictModel):
    crash_once: list[str] = Field(
        default_factory=list, description=f"Points whose worker process is killed once per run: {', '.join(POINTS)}."
    )

    def model_post_init(self, _ctx) -> None:
        unknown = sorted(set(self.crash_once) - set(POINTS))
        if unknown:
            raise ValueError(f"unknown fault point(s) {unknown}; known: {list(POINTS)}")


def _marker(run_uri: str, point: str) -> tuple[pafs.FileSystem, str]:
    fs, root = resolve_filesystem(run_uri)
    return fs, f"{root.rstrip('/')}/_faults/{point}"


def crash_once(cfg: FaultConfig, point: str, run_uri: str) -> None:
    """Kill this process if ``point`` is armed and has not fired for this run yet."""
    if point not in cfg.crash_once:
        return
    fs, path = _marker(run_uri, point)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        return
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(f"pid {os.getpid()}\n".encode())
    log.warning("fault injection: killing process %d at %s", os.getpid(), point)
    os._exit(1)


def fired(run_uri: str, point: str) -> bool:
    """Whether ``point`` has killed a process in this run (tests check the fault really happened)."""
    fs, path = _marker(run_uri, point)
    return fs.get_file_info(path).type != pafs.FileType.NotFound
