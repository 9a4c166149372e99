"""The Serve application over real HTTP on the shared local Ray instance.

Happy paths with checks on content (held-out members of a planted community come back far above
chance; ranked probabilities are sorted and in [0, 1]), every bad-input case answered 4xx in the
one error shape with the request's id, the unknown-user fallback, a ranking replica killed
during a stream of requests and a redeploy to a new run directory during another, neither with a
failed request. Keys: every route the OpenAPI schema lists refuses a missing or wrong key (401)
and a key without its scope (403); the privacy floors; no seed in an audience; the audit log's
rows read back as Parquet. The fuzz test runs with an admin key and with none.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import HealthCheck, settings

from reco import artifacts
from reco.run_dir import RunDir
from serve.audit import seed_digest
from tests.e2e.helpers import community

pytestmark = pytest.mark.ray
OPEN = {"/healthz", "/readyz"}  # in the schema and open; /docs, /openapi.json, / and /static/* are not in it


def test_health_ready_and_docs(served):
    base, run_dir = served.base, served.run_dir
    assert requests.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = requests.get(f"{base}/readyz").json()
    assert ready["ready"] is True and ready["run_dir"] == run_dir
    spec = requests.get(f"{base}/openapi.json").json()
    assert {"/v1/audiences/expand", "/v1/rank", "/v1/recommend", "/v1/audiences/{seed_list_id}"} <= set(spec["paths"])
    assert requests.get(f"{base}/docs").status_code == 200
    assert requests.get(f"{base}/").status_code == 200 and requests.get(f"{base}/static/explorer.js").status_code == 200


def test_ensemble_on_a_run_without_one_is_a_clear_400(served):
    seeds, _, _ = community(served.run_dir)
    r = requests.post(
        f"{served.base}/v1/audiences/expand",
        json={"seed_user_ids": seeds, "audience_size": 200, "method": "ensemble"},
        headers=served.headers("expand"),
    )
    assert r.status_code == 400, r.text
    assert "expansion.representations" in r.json()["error"]["message"]


@pytest.mark.parametrize("method", ["blend", "density", "classifier", "centroid", "logreg"])
def test_expand_finds_held_out_community_members(served, method):
    base, run_dir = served.base, served.run_dir
    seeds, held_out, n_users = community(run_dir)
    size = 2 * len(held_out)
    r = requests.post(
        f"{base}/v1/audiences/expand",
        json={"seed_user_ids": seeds + ["nobody-1", seeds[0]], "audience_size": size, "method": method},
        headers=served.headers("expand"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    audience = [m["user_id"] for m in body["audience"]]
    assert len(audience) == size and not set(audience) & set(seeds)
    assert body["seeds_unknown"] == 1 and body["unknown_seed_ids"] == ["nobody-1"] and body["duplicate_seed_ids"] == 1
    assert [m["rank"] for m in body["audience"]] == list(range(1, size + 1))
    recall = len(set(audience) & set(held_out)) / len(held_out)
    chance = size / (n_users - len(seeds))
    assert recall > 2 * chance, (method, recall, chance)


def test_batch_audience_pages(served):
    base, run_dir = served.base, served.run_dir
    lists = RunDir(run_dir).read_table("audiences", columns=["seed_list_id"]).column(0).to_pylist()
    first = lists[0]
    h = served.headers("expand")
    a = requests.get(f"{base}/v1/audiences/{first}", params={"offset": 0, "limit": 5}, headers=h).json()
    b = requests.get(f"{base}/v1/audiences/{first}", params={"offset": 5, "limit": 5}, headers=h).json()
    assert a["total"] == lists.count(first) and len(a["audience"]) == 5
    assert [m["rank"] for m in a["audience"] + b["audience"]] == list(range(1, 11))


def test_rank_returns_sorted_calibrated_probabilities(served):
    _check_ranked(served, served.run_dir)


def _check_ranked(served, run_dir: str) -> None:
    topics = RunDir(run_dir).read_table(artifacts.TOPIC_VOCAB).column("raw_id").to_pylist()
    users = RunDir(run_dir).read_table(artifacts.USER_VOCAB).column("raw_id").to_pylist()
    items = topics[:50] + ["no-such-item"]
    r = requests.post(
        f"{served.base}/v1/rank", json={"user_id": users[3], "item_ids": items}, headers=served.headers("rank")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    p = [x["probability"] for x in body["items"]]
    assert len(p) == len(items) and sorted(p, reverse=True) == p and all(0 <= x <= 1 for x in p)
    assert body["user_known"] is True and body["unknown_item_ids"] == ["no-such-item"]


def test_recommend_known_user_and_unknown_user_fallback(served):
    base, run_dir = served.base, served.run_dir
    run = RunDir(run_dir)
    hist = run.read_table("histories").to_pandas()
    vocab_u = run.read_table(artifacts.USER_VOCAB).to_pandas().set_index("user_id")["raw_id"]
    vocab_t = run.read_table(artifacts.TOPIC_VOCAB).to_pandas().set_index("topic_id")["raw_id"]
    row = hist.iloc[0]
    h = served.headers("recommend")
    r = requests.post(f"{base}/v1/recommend", json={"user_id": vocab_u[row.user_id], "k": 5}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    got = [x["item_id"] for x in body["items"]]
    assert body["fallback"] is False and len(got) == 5
    assert not set(got) & set(vocab_t[list(row.topics)])  # nothing the user already engaged with
    p = [x["probability"] for x in body["items"]]
    assert sorted(p, reverse=True) == p
    f = requests.post(f"{base}/v1/recommend", json={"user_id": "someone-new", "k": 5}, headers=h).json()
    assert f["fallback"] is True and "unknown user" in f["fallback_reason"] and len(f["items"]) == 5


@pytest.mark.parametrize("retriever", ["popularity", "last_items_knn", "pooled", "pixie"])
def test_recommend_with_each_retriever_the_run_can_build(served, retriever):
    base, run_dir = served.base, served.run_dir
    user = RunDir(run_dir).read_table(artifacts.USER_VOCAB).column("raw_id")[5].as_py()
    r = requests.post(
        f"{base}/v1/recommend",
        json={"user_id": user, "k": 5, "retriever": retriever},
        headers=served.headers("recommend"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["retriever"] == retriever and len(body["items"]) == 5 and body["fallback"] is False


UNKNOWN = [f"nobody-{i}" for i in range(10)]
BAD = [
    ("post", "/v1/audiences/expand", b"{not json", 422, "not valid JSON"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": "1,2,3"}, 422, "seed_user_ids"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": []}, 422, "seed_user_ids"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "method": "magic"}, 422, "method"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "audience_size": 0}, 422, "audience_size"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "colour": "red"}, 422, "colour"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": [str(i) for i in range(501)]}, 422, "seed_user_ids is 501"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": UNKNOWN[:2]}, 422, "at least 10 are needed"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": UNKNOWN, "audience_size": 19}, 422, "smallest audience served"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": UNKNOWN}, 400, "known seed"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": UNKNOWN, "audience_size": 100_001}, 422, "is 100001, more"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["x" * 30_000]}, 413, "larger than"),
    ("get", "/v1/audiences/no-such-list", None, 404, "unknown seed list"),
    ("get", "/v1/audiences/no-such-list?limit=1001", None, 422, "limit is 1001"),
    ("post", "/v1/rank", {"user_id": "1"}, 422, "item_ids"),
    ("post", "/v1/rank", {"user_id": "1", "item_ids": [str(i) for i in range(201)]}, 422, "item_ids is 201"),
    ("post", "/v1/recommend", {"user_id": "1", "k": 0}, 422, "k"),
    ("post", "/v1/recommend", {"user_id": "1", "k": 51}, 422, "k is 51"),
    ("post", "/v1/recommend", {"user_id": "1", "k": "ten"}, 422, "k"),
    ("post", "/v1/recommend", {"user_id": "1", "recent_item_ids": ["no-such-item"]}, 400, "unknown item id"),
    ("post", "/v1/recommend", {"user_id": "1", "retriever": "magic"}, 400, "magic"),
    ("post", "/v1/recommend", {"user_id": "1", "retriever": "two_tower"}, 404, "train_two_tower"),
]  # fmt: skip
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large",
         422: "invalid_request"}  # fmt: skip


def _send(served, verb: str, path: str, body, headers: dict | None = None) -> requests.Response:
    url = f"{served.base}{path}"
    if body is None:
        return requests.request(verb.upper(), url, headers=headers, timeout=60)
    if isinstance(body, bytes):
        return requests.post(
            url, data=body, headers={"content-type": "application/json", **(headers or {})}, timeout=60
        )
    return requests.post(url, json=body, headers=headers, timeout=60)


def assert_error(r: requests.Response, status: int, message: str = "", request_id: str | None = None) -> dict:
    """The one error shape: a code for the status, one line, the request id in the body and, once, in the header."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "request_id"} and err["code"] == CODES[status], err
    assert message in err["message"] and "\n" not in err["message"] and "Traceback" not in err["message"]
    assert r.headers["x-request-id"] == err["request_id"] and (request_id is None or err["request_id"] == request_id)
    return err


@pytest.mark.parametrize(
    "verb, path, body, status, message", BAD, ids=[f"{b[1]}-{b[3]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_requests_get_a_4xx_in_the_error_shape(served, verb, path, body, status, message):
    rid = f"bad-{path.replace('/', '_')}-{status}"[:100]
    assert_error(_send(served, verb, path, body, {**served.headers(), "X-Request-ID": rid}), status, message, rid)


def _operations(served) -> list[tuple[str, str, bool]]:
    """(method, a concrete path, needs a key) for every operation of the app's own OpenAPI schema:
    a route added later is in this list without anyone adding it here."""
    spec = requests.get(f"{served.base}/openapi.json", timeout=30).json()
    return [
        (method, re.sub(r"\{[^}]+\}", "x", path), "security" in op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def test_every_route_but_health_refuses_a_missing_or_wrong_key(served):
    ops = _operations(served)
    assert {p for _, p, keyed in ops if not keyed} == OPEN
    assert len([p for _, p, keyed in ops if keyed]) >= 10
    for method, path, keyed in ops:
        if not keyed:
            continue
        for headers in ({}, {"Authorization": "Bearer rk_wrong"}, {"X-API-Key": "wrong"}, {"Authorization": "Basic x"}):
            r = _send(served, method, path, {} if method == "post" else None, headers)
            assert_error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer", (method, path)
    assert_error(_send(served, "get", "/v1/explorer/reports/x.png", None), 401)  # not in the schema, still keyed


def test_a_key_without_the_routes_scope_is_403_and_with_it_200(served):
    seeds, _, _ = community(served.run_dir)
    calls = {
        "expand": ("post", "/v1/audiences/expand", {"seed_user_ids": seeds[:20], "audience_size": 20}),
        "rank": ("post", "/v1/rank", {"user_id": "1", "item_ids": ["1"]}),
        "recommend": ("post", "/v1/recommend", {"user_id": "1", "k": 2}),
        "explorer": ("get", "/v1/explorer/run", None),
    }
    for name in ("expand", "rank", "recommend"):
        for scope, (verb, path, body) in calls.items():
            r = _send(served, verb, path, body, served.headers(name))
            if scope == name:
                assert r.status_code == 200, (name, path, r.text)
            else:
                assert_error(r, 403, f"lacks the {scope!r} scope")
    for verb, path, body in calls.values():
        assert _send(served, verb, path, body, served.headers("admin")).status_code == 200, path


def test_request_ids_are_the_clients_or_serves_and_come_back_once(served):
    r = requests.get(f"{served.base}/healthz", headers={"X-Request-ID": "client-id-1"}, timeout=30)
    assert r.status_code == 200 and r.headers["x-request-id"] == "client-id-1"
    r = requests.post(f"{served.base}/v1/rank", json={}, timeout=30)
    err = assert_error(r, 401)
    assert len(err["request_id"]) >= 16 and "," not in r.headers["x-request-id"]  # one id, one header
    other = assert_error(requests.post(f"{served.base}/v1/rank", json={}, timeout=30), 401)
    assert other["request_id"] != err["request_id"]


def test_too_few_known_seeds_is_under_the_floor(served):
    """Ten distinct ids, six of them users: over the expander's own minimum (5), under the floor (10)."""
    seeds, _, _ = community(served.run_dir)
    body = {"seed_user_ids": [*UNKNOWN[:4], *seeds[:6]], "audience_size": 20}
    r = _send(served, "post", "/v1/audiences/expand", body, served.headers("expand"))
    assert_error(r, 422, "only 6 of the seed ids are known users; at least 10 are needed")


def test_seeds_never_come_back_even_when_the_audience_is_everyone(served):
    seeds, _, n_users = community(served.run_dir)
    r = requests.post(
        f"{served.base}/v1/audiences/expand",
        json={"seed_user_ids": seeds, "audience_size": n_users, "method": "blend"},
        headers=served.headers("expand"),
        timeout=120,
    )
    assert r.status_code == 200, r.text
    audience = [m["user_id"] for m in r.json()["audience"]]
    assert audience and len(audience) <= n_users - len(seeds) and not set(audience) & set(seeds)


def test_expansions_are_in_the_audit_log(served):
    seeds, _, _ = community(served.run_dir)
    sent = {}
    for i in range(3):
        rid = f"audit-{i}-{time.time_ns()}"
        body = {"seed_user_ids": seeds[: 20 + i], "audience_size": 25 + i, "method": "density"}
        r = requests.post(
            f"{served.base}/v1/audiences/expand", json=body, headers={**served.headers("expand"), "X-Request-ID": rid}
        )
        assert r.status_code == 200, r.text
        sent[rid] = (body, len(r.json()["audience"]))
    deadline, rows = time.time() + 30, {}
    while time.time() < deadline and len(rows) < 3:  # flushed every second (audit_flush_seconds)
        time.sleep(0.5)
        if any(p.suffix == ".parquet" for p in Path(served.audit_dir).iterdir()):
            rows = {r["request_id"]: r for r in pq.read_table(served.audit_dir).to_pylist() if r["request_id"] in sent}
    assert set(rows) == set(sent), "the audit log never showed the expansions"
    for rid, (body, returned) in sent.items():
        row = rows[rid]
        assert row["key_name"] == "expand" and row["route"] == "/v1/audiences/expand" and row["method"] == "density"
        assert row["seed_ids_sha256"] == seed_digest(body["seed_user_ids"]) and row["seeds"] == len(
            body["seed_user_ids"]
        )
        assert row["seeds_known"] == len(body["seed_user_ids"])
        assert (row["audience_size_asked"], row["audience_size_returned"]) == (body["audience_size"], returned)
        assert abs(row["time"].timestamp() - time.time()) < 120
    assert not any(k in json.dumps(list(rows.values()), default=str) for k in served.keys.values())


def _ranking_replicas() -> list:
    from ray.util.state import list_actors

    return list_actors(filters=[("class_name", "=", "ServeReplica:reco:RankingDeployment"), ("state", "=", "ALIVE")])


def test_ranking_replica_killed_during_a_stream_fails_no_request(served):
    """Issue 7's serving fault: a replica dies under load; the handle retries, Serve replaces it."""
    import ray

    base, run_dir = served.base, served.run_dir
    deadline = time.time() + 120
    while time.time() < deadline and len(_ranking_replicas()) < 2:
        time.sleep(0.5)
    before = {a.actor_id: a for a in _ranking_replicas()}
    assert len(before) == 2, "two ranking replicas never came up"

    run = RunDir(run_dir)
    user = run.read_table(artifacts.USER_VOCAB).column("raw_id")[0].as_py()
    items = run.read_table(artifacts.TOPIC_VOCAB).column("raw_id").to_pylist()[:50]
    statuses: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with requests.Session() as s:
            s.headers.update(served.headers("rank"))
            while not stop.is_set():
                statuses.append(
                    s.post(f"{base}/v1/rank", json={"user_id": user, "item_ids": items}, timeout=30).status_code
                )

    clients = [threading.Thread(target=stream) for _ in range(4)]
    for c in clients:
        c.start()
    time.sleep(2)
    victim = next(iter(before.values()))
    ray.kill(ray.get_actor(victim.name, namespace="serve"), no_restart=True)
    killed_at = len(statuses)
    deadline = time.time() + 120
    while time.time() < deadline:
        alive = {a.actor_id for a in _ranking_replicas()}
        if len(alive) == 2 and victim.actor_id not in alive:
            break
        time.sleep(0.5)
    time.sleep(2)  # keep streaming through the new replica's first requests
    stop.set()
    for c in clients:
        c.join()
    alive = {a.actor_id for a in _ranking_replicas()}
    assert victim.actor_id not in alive and len(alive) == 2, "the killed replica was not replaced"
    assert len(statuses) > killed_at + 20, "too few requests after the kill to show anything"
    assert set(statuses) == {200}, json.dumps({s: statuses.count(s) for s in set(statuses)})


def _wait_for_deployments(app_name: str, names: set[str], timeout_s: float = 120) -> None:
    """Until the application runs exactly ``names``, each with only running replicas."""
    from ray import serve

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        app = serve.status().applications.get(app_name)
        if (
            app is not None
            and set(app.deployments) == names
            and all(set(d.replica_states) == {"RUNNING"} for d in app.deployments.values())
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"{app_name} did not settle on {sorted(names)}")


def test_redeploy_new_run_dir_without_failed_requests(served, tmp_path):
    """A new run directory deployed in serve/config.yaml's shape (``layout: compact``: the ingress
    ranks, retrieves and expands itself) under a stream of requests; the routes are checked again
    on it, and the fuzz test below runs on it.

    The shape changes first, with no requests in flight: Serve deletes the deployments the new
    shape lacks while the old ingress replicas drain, so a request caught in an old ingress then
    waits for an expansion replica that will never come (docs/serving.md)."""
    from ray import serve

    from serve.app import build_app

    base, run_dir = served.base, served.run_dir
    compact = {"layout": "compact"}
    serve.run(
        build_app({"run_dir": run_dir, **compact, **served.settings}),
        name=served.name,
        route_prefix=served.prefix,
        blocking=False,
    )
    _wait_for_deployments(served.name, {"Gateway"})
    new_dir = str(tmp_path / "next-run")
    shutil.copytree(run_dir, new_dir)
    seeds, _, _ = community(run_dir)
    statuses: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with requests.Session() as s:
            s.headers.update(served.headers("expand"))
            while not stop.is_set():
                r = s.post(
                    f"{base}/v1/audiences/expand",
                    json={"seed_user_ids": seeds[:20], "audience_size": 50, "method": "density"},
                )
                statuses.append(r.status_code)

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(1)
    serve.run(
        build_app({"run_dir": new_dir, **compact, **served.settings}),
        name=served.name,
        route_prefix=served.prefix,
        blocking=False,
    )
    deadline = time.time() + 120
    while time.time() < deadline and requests.get(f"{base}/readyz").json().get("run_dir") != new_dir:
        time.sleep(0.5)
    time.sleep(1)
    stop.set()
    t.join()
    assert requests.get(f"{base}/readyz").json()["run_dir"] == new_dir
    assert len(statuses) > 10 and set(statuses) == {200}, json.dumps({s: statuses.count(s) for s in set(statuses)})
    _check_ranked(served, new_dir)  # now ranked by the ingress replica itself
    now = dataclasses.replace(served, run_dir=new_dir)
    test_recommend_known_user_and_unknown_user_fallback(now)  # retrieved there too
    test_expand_finds_held_out_community_members(now, "blend")  # and expanded there
    test_batch_audience_pages(now)


def _openapi_schema():
    import schemathesis

    from serve.api import create_app
    from serve.auth import KeyStore, entry, new_key
    from serve.settings import ServeSettings

    # The schema alone: no route is called, so the app needs no services, and any key will do.
    keys = KeyStore.from_entries([entry("schema", new_key(), ["admin"])], "schema")
    return schemathesis.openapi.from_dict(create_app(ServeSettings(), None, None, keys=keys).openapi())


SCHEMA = _openapi_schema()
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _check_answer(case, r) -> None:
    from schemathesis.checks import not_a_server_error, response_schema_conformance

    assert r.status_code < 500, (case.method, case.formatted_path, r.status_code, r.text[:300])
    if r.status_code >= 400:
        err = r.json()["error"]
        header = r.headers["x-request-id"]  # schemathesis keeps each header's values as a list
        assert "\n" not in err["message"] and [err["request_id"]] == (header if isinstance(header, list) else [header])
    # every answer, 2xx included, matches the response model the schema documents for its status
    case.validate_response(r, checks=[not_a_server_error, response_schema_conformance])


@SCHEMA.parametrize()
@FUZZ
def test_fuzzed_requests_with_an_admin_key_never_get_a_500(served, case):
    """Schemathesis generates valid and invalid requests for every route; answers must match the schema."""
    _check_answer(case, case.call(base_url=served.base, headers=served.headers("admin"), timeout=60))


@SCHEMA.parametrize()
@FUZZ
def test_fuzzed_requests_without_a_key_get_401_on_every_keyed_route(served, case):
    """The same requests with no key: every route that needs one answers 401, never anything else."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")}
    case.headers = headers
    r = case.call(base_url=served.base, timeout=60)
    if case.operation.path in OPEN:
        assert r.status_code in (200, 405, 503), r.text  # 405: schemathesis tries other methods too
    else:
        assert r.status_code == 401, (case.method, case.formatted_path, r.status_code, r.text[:300])
    _check_answer(case, r)
