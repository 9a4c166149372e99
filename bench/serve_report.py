"""What bench.serve prints: the table, each target's pass or miss with where the time goes, the JSON line."""

from __future__ import annotations

from typing import Any

from bench.http_load import LoadResult

ROUTES = ("expand", "audience", "rank", "recommend")


def base_route(route: str) -> str:
    """``recommend:<retriever>`` is /v1/recommend asking that retriever for candidates."""
    return route.split(":", 1)[0]


PATHS = {
    "expand": "/v1/audiences/expand",
    "audience": "/v1/audiences/{seed_list_id}",
    "rank": "/v1/rank",
    "recommend": "/v1/recommend",
}
# (route, connections) -> (min req/s or None, max p99 ms); the serving targets for the HAProxy ingress
TARGETS = {("rank", 8): (800.0, 25.0), ("expand", 8): (None, 150.0), ("recommend", 8): (None, 50.0)}


def print_table(results: list[LoadResult]) -> None:
    print(
        f"{'route':<10} {'mode':<14} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
    )
    for r in sorted(results, key=lambda r: (ROUTES.index(base_route(r.route)), r.route, r.connections, r.mode)):
        print(
            f"{r.route:<10} {r.mode:<14} {r.connections:>5} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors:>6}"
        )


def print_layers(results: list[LoadResult], ingress: str) -> None:
    """Per target: pass or miss, and where the median time goes (work, HTTP + FastAPI, Ray Serve)."""
    at = {(r.mode, r.route, r.connections): r for r in results}
    print(f"\ntargets ({ingress}) and where the time goes (p50 ms at the target's concurrency):")
    for (route, n), (min_rps, max_p99) in TARGETS.items():
        r = at.get((ingress, route, n))
        if r is None:
            continue
        ok = r.errors == 0 and r.p99_ms <= max_p99 and (min_rps is None or r.rps >= min_rps)
        floor = at.get(("uvicorn", route, n))
        work = at.get(("in-process", route, 1))
        want = f"p99 <= {max_p99:g} ms" + (f", >= {min_rps:g} req/s" if min_rps else "")
        layers = []
        if work:
            layers.append(f"work {work.p50_ms:.2f}")
        if floor and work:
            layers.append(f"HTTP+FastAPI {floor.p50_ms - work.p50_ms:+.2f}")
        if floor:
            layers.append(f"Ray Serve {r.p50_ms - floor.p50_ms:+.2f}")
            layers.append(f"rps vs uvicorn {r.rps / max(floor.rps, 1e-9):.2f}x")
        print(
            f"  {PATHS[route]:<22} c={n:<2} {'PASS' if ok else 'MISS'}  want {want}; got {r.rps:.0f} req/s, "
            f"p99 {r.p99_ms:.1f} ms, {r.errors} errors  [{', '.join(layers)}]"
        )
        if r.cpu_ms:
            print(f"  {'':<22}      CPU ms per request: " + ", ".join(f"{k} {v:g}" for k, v in r.cpu_ms.items()))


def summary(results: list[LoadResult], ingress: str) -> dict[str, Any]:
    """The bench's JSON line: figures per route path and connection count, per layer."""

    def block(mode: str) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for r in results:
            if r.mode == mode and r.route in PATHS:
                out.setdefault(PATHS[r.route], {})[str(r.connections)] = {
                    "rps": r.rps,
                    "p50_ms": r.p50_ms,
                    "p95_ms": r.p95_ms,
                    "p99_ms": r.p99_ms,
                    "errors": r.errors,
                }
        return out

    primary = "serve-haproxy" if ingress == "haproxy" else "serve"
    in_proc = {
        PATHS[r.route]: {"p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "calls_per_s": r.rps}
        for r in results
        if r.mode == "in-process" and r.route in PATHS
    }
    by_retriever: dict[str, dict[str, dict]] = {}
    for r in results:
        if ":" in r.route:
            by_retriever.setdefault(r.route.split(":", 1)[1], {}).setdefault(r.mode, {})[str(r.connections)] = {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "errors": r.errors,
            }
    cpu = {
        f"{r.mode} {PATHS[r.route]}": r.cpu_ms
        for r in results
        if r.cpu_ms and r.route in PATHS and (r.route, r.connections) in TARGETS
    }
    return {
        "ingress": ingress,
        "routes": block(primary),
        "default_proxy": block("serve"),
        "composed": block(f"{primary}-composed"),
        "uvicorn_floor": block("uvicorn"),
        "in_process_ms": in_proc,
        "recommend_by_retriever": by_retriever,
        "cpu_ms_per_request_at_target": cpu,
    }
