"""The pipeline's distributed steps on a two-node local cluster, and where their workers ran (test_multi_node.py).

    python tests/e2e/two_node_run.py RUN_DIR OUT.json [--set key=value ...]

``ray.cluster_utils.Cluster`` starts two raylets on this machine, each with its own resources
(three logical CPUs each), so Ray schedules across them as it would across machines. The test
asks for two CPUs per training worker and per scoring actor, so two of them cannot share a node
and Ray must place one on each, while each node keeps a CPU for Ray Data's read tasks (with
less, the actors starve the reads). With smaller actors Ray Data's best-effort spreading once
put both scoring actors on one node.
Runs in its own process because a test session already holds a Ray instance.
"""

from __future__ import annotations

import json
import socket
import sys
from collections import defaultdict

import ray
from ray.cluster_utils import Cluster


def placements() -> dict[str, list[str]]:
    """Node ids each actor class ran on (dead actors included: the state API keeps them)."""
    from ray.util.state import list_actors

    nodes: dict[str, set[str]] = defaultdict(set)
    for a in list_actors(limit=10_000, detail=True):
        if a.node_id:  # an actor that never got scheduled has none
            nodes[a.class_name].add(a.node_id)
    return {k: sorted(v) for k, v in nodes.items()}


def main(argv: list[str]) -> int:
    run_dir, out, sets = argv[0], argv[1], argv[2:]
    with socket.socket() as s:  # the test session's own instance holds the default dashboard port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 3,
            "include_dashboard": True,
            "dashboard_port": port,
            "object_store_memory": 256 * 2**20,
        },
    )
    cluster.add_node(num_cpus=3, object_store_memory=256 * 2**20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    from ray_jobs import build_index, expand, export_embeddings, ingest, train_embeddings

    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    args = ["--config", "configs/tiny.yaml", "--set", f"run_dir={run_dir}", *sets]
    rc = 0
    for job in (ingest, train_embeddings, export_embeddings, build_index, expand):
        rc = rc or job.main(args)
    with open(out, "w") as f:
        json.dump({"rc": rc, "nodes": nodes, "placements": placements()}, f)
    ray.shutdown()
    cluster.shutdown()
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
