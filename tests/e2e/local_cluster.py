"""A Ray cluster of separate nodes on this machine, started as a user starts one: ``ray start``.

Each node is a ``ray start --block`` process with its own temp dir and ports (the test session's
own Ray instance holds the defaults), token authentication on as Ray 2.60 sets it by default,
and the environment given (the S3 endpoint). The Jobs API is reached over HTTP with the token
from ``~/.ray/auth_token``, as ``ray job submit`` reaches it with ``RAY_AUTH_MODE=token``.
Stopping sends each node SIGINT, which stops only that node's processes (``ray stop`` would
stop every Ray instance on the machine, the test session's too).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import requests
from ray.job_submission import JobStatus, JobSubmissionClient

RAY_CLI = str(Path(sys.executable).with_name("ray"))  # the environment's own, whether or not it is on PATH
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _agent_ports() -> list[str]:
    return [
        f"--{name}={_free_port()}"
        for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
                     "metrics-export-port")
    ]  # fmt: skip


@dataclass
class LocalCluster:
    """``with LocalCluster(nodes=2, cpus=3, env=...) as c:``; ``c.client`` submits jobs."""

    nodes: int = 2
    cpus: int = 3
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 180
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list = field(default_factory=list)

    def __enter__(self) -> LocalCluster:
        self.root = Path(tempfile.mkdtemp(prefix="ray-cluster-"))
        self.gcs_port, self.dashboard_port = _free_port(), _free_port()
        # As a user with the project's environment activated: its python and ray on PATH.
        path = f"{Path(RAY_CLI).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, **self.env, "RAY_AUTH_MODE": "token", "PATH": path}
        env.pop("RAY_ADDRESS", None)  # the test session's instance
        try:
            head = ["--head", f"--port={self.gcs_port}", f"--dashboard-port={self.dashboard_port}",
                    "--include-dashboard=true", f"--ray-client-server-port={_free_port()}"]  # fmt: skip
            self._start(head, "head", env)
            self._wait(lambda: requests.get(f"{self.url}/api/version", headers=self.headers, timeout=5).ok)
            for i in range(1, self.nodes):
                self._start([f"--address=127.0.0.1:{self.gcs_port}"], f"node{i}", env)
            self._wait(lambda: self.alive_nodes() == self.nodes)
            # JobSubmissionClient prefers RAY_ADDRESS (the test session's instance) to its argument.
            with mock.patch.dict(os.environ):
                os.environ.pop("RAY_ADDRESS", None)
                self.client = JobSubmissionClient(self.url, headers=self.headers)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def headers(self) -> dict[str, str]:
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")).expanduser()
        return {"Authorization": f"Bearer {token.read_text().strip()}"} if token.is_file() else {}

    def _start(self, args: list[str], name: str, env: dict[str, str]) -> None:
        log = open(self.root / f"{name}.log", "w")
        self.logs.append(log)
        cmd = [RAY_CLI, "start", "--block", f"--num-cpus={self.cpus}", f"--temp-dir={self.root / name}",
               "--disable-usage-stats", *args, *_agent_ports()]  # fmt: skip
        self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, ready) -> None:
        deadline = time.time() + self.ready_timeout_s
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a Ray node exited; logs in {self.root}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the local cluster was not ready within {self.ready_timeout_s:.0f}s; logs in {self.root}")

    def alive_nodes(self) -> int:
        nodes = requests.get(f"{self.url}/nodes?view=summary", headers=self.headers, timeout=10).json()
        return sum(1 for n in nodes["data"]["summary"] if n["raylet"]["state"] == "ALIVE")

    def run_job(self, entrypoint: str, working_dir: str, timeout_s: float = 900) -> tuple[JobStatus, str]:
        """Submit, wait for the end, return (status, logs)."""
        job = self.client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": working_dir})
        deadline = time.time() + timeout_s
        while (status := self.client.get_job_status(job)) not in TERMINAL:
            if time.time() > deadline:
                self.client.stop_job(job)
                raise TimeoutError(f"job {job} still {status} after {timeout_s:.0f}s")
            time.sleep(0.5)
        return status, self.client.get_job_logs(job)

    def actor_nodes(self) -> dict[str, set[str]]:
        """Node ids each actor class ran on (dead actors included: the state API keeps them)."""
        r = requests.get(f"{self.url}/api/v0/actors?detail=1&limit=10000", headers=self.headers, timeout=30).json()
        out: dict[str, set[str]] = {}
        for a in r["data"]["result"]["result"]:
            if a.get("node_id"):
                out.setdefault(a["class_name"], set()).add(a["node_id"])
        return out
