"""Where the CPU goes while a route is driven: CPU milliseconds per request, by process role.

On two cores every layer competes for the same cycles, so latency differences between modes
show that a layer costs something but not which process spends it. This reads every process's
CPU time (psutil) before and after a load point and charges it to the role the process plays:
the load generator (this process), haproxy, the ingress replica, each deployment's replicas,
the server's driver, and Ray's own processes.
"""

from __future__ import annotations

import os
import time

import psutil

# (substring of the process's command line, role), first match wins
ROLES = (
    ("ServeReplica:reco:Gateway", "ingress replica"),
    ("ExpansionDeployment", "expansion replicas"),
    ("RankingDeployment", "ranking replicas"),
    ("RetrievalDeployment", "retrieval replicas"),
    ("haproxy", "haproxy"),
    ("HAProxyManager", "haproxy"),
    ("ProxyActor", "Serve HTTP proxy"),
    ("--_server uvicorn", "uvicorn app"),
    ("--_server", "server driver"),
)
OTHER = "Ray and the rest"


def role_of(cmdline: str) -> str:
    return next((role for key, role in ROLES if key in cmdline), OTHER)


def cpu_seconds() -> dict[int, tuple[float, str]]:
    """{pid: (user + system CPU seconds, role)} of every process we may read."""
    out = {}
    for p in psutil.process_iter(["cmdline", "name"]):
        try:
            t = p.cpu_times()
            out[p.pid] = (t.user + t.system, role_of(" ".join(p.info["cmdline"] or [p.info["name"] or ""])))
        except psutil.Error:
            continue
    return out


class CpuSplit:
    """``with CpuSplit() as split: drive(...)``; then ``split.per_request(n)``: {role: CPU ms per request}."""

    def __enter__(self) -> CpuSplit:
        self.before, self.t0 = cpu_seconds(), time.time()
        return self

    def __exit__(self, *exc) -> None:
        self.after, self.seconds = cpu_seconds(), time.time() - self.t0

    def per_request(self, requests: int) -> dict[str, float]:
        me = os.getpid()
        spent: dict[str, float] = {}
        for pid, (cpu, role) in self.after.items():
            if pid in self.before:
                role = "load generator" if pid == me else role
                spent[role] = spent.get(role, 0.0) + cpu - self.before[pid][0]
        total = sum(spent.values())
        out = {
            role: round(s * 1000 / max(requests, 1), 2)
            for role, s in sorted(spent.items(), key=lambda x: -x[1])
            if s > 0
        }
        out["cores busy"] = round(total / max(self.seconds, 1e-9), 2)
        return out
