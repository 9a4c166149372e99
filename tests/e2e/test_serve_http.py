"""The Serve application over real HTTP on the shared local Ray instance.

Happy paths with checks on content (held-out members of a planted community come back far above
chance; ranked probabilities are sorted and in [0, 1]), every bad-input case answered 4xx with a
one-line reason, the unknown-user fallback, and a redeploy to a new run directory during a
stream of requests with no failed request.
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, settings

from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def served(tiny_run, serve_app):
    from serve.app import build_app

    run_dir, _ = tiny_run
    app = build_app({"run_dir": run_dir, "max_seed_ids": 500, "max_candidates": 200, "max_k": 50, "max_body_bytes": 20_000})
    with serve_app(app, "reco") as base:
        yield base, run_dir


def _community(run_dir: str) -> tuple[list[str], list[str], int]:
    """Raw ids of the largest planted community's members, split 70/30, and the user count."""
    run = RunDir(run_dir)
    truth = run.read_table("truth/user_communities.parquet").to_pandas()
    vocab = run.read_table("vocab/users.parquet").to_pandas().set_index("user_id")["raw_id"]
    biggest = truth.community.value_counts().idxmax()
    members = vocab.loc[truth[truth.community == biggest].user_id].tolist()
    rng = np.random.default_rng(0)
    rng.shuffle(members)
    cut = int(len(members) * 0.7)
    return members[:cut], members[cut:], len(vocab)


def test_health_ready_and_docs(served):
    base, run_dir = served
    assert requests.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = requests.get(f"{base}/readyz").json()
    assert ready["ready"] is True and ready["run_dir"] == run_dir
    spec = requests.get(f"{base}/openapi.json").json()
    assert {"/v1/audiences/expand", "/v1/rank", "/v1/recommend", "/v1/audiences/{seed_list_id}"} <= set(spec["paths"])
    assert requests.get(f"{base}/docs").status_code == 200


@pytest.mark.parametrize("method", ["blend", "density", "classifier", "centroid"])
def test_expand_finds_held_out_community_members(served, method):
    base, run_dir = served
    seeds, held_out, n_users = _community(run_dir)
    size = 2 * len(held_out)
    r = requests.post(f"{base}/v1/audiences/expand", json={"seed_user_ids": seeds + ["nobody-1", seeds[0]],
                                                            "audience_size": size, "method": method})
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
    base, run_dir = served
    lists = RunDir(run_dir).read_table("audiences", columns=["seed_list_id"]).column(0).to_pylist()
    first = lists[0]
    a = requests.get(f"{base}/v1/audiences/{first}", params={"offset": 0, "limit": 5}).json()
    b = requests.get(f"{base}/v1/audiences/{first}", params={"offset": 5, "limit": 5}).json()
    assert a["total"] == lists.count(first) and len(a["audience"]) == 5
    assert [m["rank"] for m in a["audience"] + b["audience"]] == list(range(1, 11))


def test_rank_returns_sorted_calibrated_probabilities(served):
    base, run_dir = served
    topics = RunDir(run_dir).read_table("vocab/topics.parquet").column("raw_id").to_pylist()
    users = RunDir(run_dir).read_table("vocab/users.parquet").column("raw_id").to_pylist()
    items = topics[:50] + ["no-such-item"]
    r = requests.post(f"{base}/v1/rank", json={"user_id": users[3], "item_ids": items})
    assert r.status_code == 200, r.text
    body = r.json()
    p = [x["probability"] for x in body["items"]]
    assert len(p) == len(items) and sorted(p, reverse=True) == p and all(0 <= x <= 1 for x in p)
    assert body["user_known"] is True and body["unknown_item_ids"] == ["no-such-item"]


def test_recommend_known_user_and_unknown_user_fallback(served):
    base, run_dir = served
    run = RunDir(run_dir)
    hist = run.read_table("histories").to_pandas()
    vocab_u = run.read_table("vocab/users.parquet").to_pandas().set_index("user_id")["raw_id"]
    vocab_t = run.read_table("vocab/topics.parquet").to_pandas().set_index("topic_id")["raw_id"]
    row = hist.iloc[0]
    r = requests.post(f"{base}/v1/recommend", json={"user_id": vocab_u[row.user_id], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [x["item_id"] for x in body["items"]]
    assert body["fallback"] is False and len(got) == 5
    assert not set(got) & set(vocab_t[list(row.topics)])  # nothing the user already engaged with
    p = [x["probability"] for x in body["items"]]
    assert sorted(p, reverse=True) == p
    f = requests.post(f"{base}/v1/recommend", json={"user_id": "someone-new", "k": 5}).json()
    assert f["fallback"] is True and "unknown user" in f["fallback_reason"] and len(f["items"]) == 5


@pytest.mark.parametrize("retriever", ["popularity", "last_items_knn", "pooled", "pixie"])
def test_recommend_with_each_retriever_the_run_can_build(served, retriever):
    base, run_dir = served
    user = RunDir(run_dir).read_table("vocab/users.parquet").column("raw_id")[5].as_py()
    r = requests.post(f"{base}/v1/recommend", json={"user_id": user, "k": 5, "retriever": retriever})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["retriever"] == retriever and len(body["items"]) == 5 and body["fallback"] is False


BAD = [
    ("post", "/v1/audiences/expand", b"{not json", 422, "not valid JSON"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": "1,2,3"}, 422, "seed_user_ids"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": []}, 422, "seed_user_ids"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "method": "magic"}, 422, "method"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "audience_size": 0}, 422, "audience_size"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["1"], "colour": "red"}, 422, "colour"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": [str(i) for i in range(501)]}, 413, "seed_user_ids is 501"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["nobody", "nobody-else"]}, 400, "known seed"),
    ("post", "/v1/audiences/expand", {"seed_user_ids": ["x" * 30_000]}, 413, "larger than"),
    ("get", "/v1/audiences/no-such-list", None, 404, "unknown seed list"),
    ("post", "/v1/rank", {"user_id": "1"}, 422, "item_ids"),
    ("post", "/v1/rank", {"user_id": "1", "item_ids": [str(i) for i in range(201)]}, 413, "item_ids is 201"),
    ("post", "/v1/recommend", {"user_id": "1", "k": 0}, 422, "k"),
    ("post", "/v1/recommend", {"user_id": "1", "k": 51}, 413, "k is 51"),
    ("post", "/v1/recommend", {"user_id": "1", "k": "ten"}, 422, "k"),
    ("post", "/v1/recommend", {"user_id": "1", "recent_item_ids": ["no-such-item"]}, 400, "unknown item id"),
    ("post", "/v1/recommend", {"user_id": "1", "retriever": "magic"}, 400, "magic"),
    ("post", "/v1/recommend", {"user_id": "1", "retriever": "two_tower"}, 404, "train_two_tower"),
]


@pytest.mark.parametrize("verb, path, body, status, message", BAD, ids=[f"{b[1]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_requests_get_a_4xx_with_one_line(served, verb, path, body, status, message):
    base, _ = served
    if body is None:
        r = requests.get(f"{base}{path}")
    elif isinstance(body, bytes):
        r = requests.post(f"{base}{path}", data=body, headers={"content-type": "application/json"})
    else:
        r = requests.post(f"{base}{path}", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert message in err and "\n" not in err and "Traceback" not in err


def test_redeploy_new_run_dir_without_failed_requests(served, tmp_path):
    from ray import serve

    from serve.app import build_app

    base, run_dir = served
    new_dir = str(tmp_path / "next-run")
    shutil.copytree(run_dir, new_dir)
    seeds, _, _ = _community(run_dir)
    statuses: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(f"{base}/v1/audiences/expand", json={"seed_user_ids": seeds[:20], "audience_size": 50, "method": "density"})
                statuses.append(r.status_code)

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(1)
    serve.run(build_app({"run_dir": new_dir, "max_seed_ids": 500, "max_candidates": 200, "max_k": 50, "max_body_bytes": 20_000}),
              name="reco", route_prefix="/", blocking=False)
    deadline = time.time() + 120
    while time.time() < deadline and requests.get(f"{base}/readyz").json().get("run_dir") != new_dir:
        time.sleep(0.5)
    time.sleep(1)
    stop.set()
    t.join()
    assert requests.get(f"{base}/readyz").json()["run_dir"] == new_dir
    assert len(statuses) > 10 and set(statuses) == {200}, json.dumps({s: statuses.count(s) for s in set(statuses)})


def _openapi_schema():
    import schemathesis

    from serve.gateway import app

    return schemathesis.openapi.from_dict(app.openapi())


@_openapi_schema().parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_fuzzed_requests_from_the_openapi_schema_never_get_a_500(served, case):
    """Schemathesis generates valid and invalid requests for every route in the schema."""
    base, _ = served
    r = case.call(base_url=base, timeout=60)
    assert r.status_code < 500, (case.method, case.formatted_path, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert "\n" not in r.json()["error"]
