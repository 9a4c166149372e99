"""The HTTP API as a client sees it, over fake services (no Ray, no server): keys and scopes on
every route the OpenAPI schema lists, one error shape with a request id on every error, 422 for
parameters out of range and 413 only for bodies, the privacy floors, no seed in an audience, the
audit log and the access log. The same app over real services and Serve: tests/e2e/test_serve_http.py."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pyarrow.parquet as pq
import pytest

from reco.errors import ArtifactError, ConfigError, DataError
from serve.api import BODY_LIMIT_EXEMPT, create_app
from serve.audit import seed_digest
from serve.auth import entry, new_key
from serve.keys import write_entries
from serve.schemas import AudienceRows, Candidates, Expansion, Ranking
from serve.settings import ServeSettings
from tests.unit.serve.asgi_client import Client

OPEN = {"/healthz", "/readyz"}
LIMITS = dict(max_seed_ids=50, max_audience_size=2000, max_candidates=5, max_k=5, max_page_size=20)
FLOORS = dict(min_seed_ids=3, min_audience_size=10)
SCOPED = {"expand": "expand-only", "rank": "rank-only", "recommend": "recommend-only", "explorer": "explorer-only"}


class FakeServices:
    """Known users are the ids starting with "u"; the audience puts a seed among its members, which
    the API must take out."""

    def __init__(self) -> None:
        self.fail_with: Exception | None = None

    async def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        if self.fail_with is not None:
            raise self.fail_with
        known = [s for s in dict.fromkeys(x.strip() for x in seed_ids) if s.startswith("u")]
        members = [f"m{i}" for i in range(k - 1)] + known[:1]
        return Expansion(members, [1.0 / (i + 1) for i in range(len(members))], ["density"] * len(members),
                         len(known), len(set(seed_ids)) - len(known), [], 0)  # fmt: skip

    async def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows:
        if seed_list_id != "list-1":
            from serve.http_errors import NotFound

            raise NotFound(f"unknown seed list {seed_list_id!r}")
        return AudienceRows(3, ["a", "b"][:limit], [0.9, 0.8][:limit], [1, 2][:limit], ["density"] * min(2, limit))

    async def rank(self, user_id: str, item_ids: list[str], context) -> Ranking:
        return Ranking(True, item_ids, [0.5] * len(item_ids), [])

    async def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates:
        return Candidates(["i1", "i2"], [None, "two"], [0.9, 0.1], retriever or "pooled", None)

    async def ready(self) -> None:
        return None


class FakeExplorer:
    def run_info(self) -> dict:
        return {"run_dir": "fake"}

    def seed_lists(self) -> list:
        return []


@pytest.fixture
def keys(tmp_path) -> dict[str, str]:
    made = {name: new_key() for name in ["admin", *SCOPED.values(), "nothing-useful"]}
    entries = [entry("admin", made["admin"], ["admin"])]
    entries += [entry(name, made[name], [scope]) for scope, name in SCOPED.items()]
    entries.append(entry("nothing-useful", made["nothing-useful"], ["rank"]))
    write_entries(tmp_path / "keys.yaml", entries)
    return made


@pytest.fixture
def settings(tmp_path, keys) -> ServeSettings:
    return ServeSettings(
        run_dir=str(tmp_path / "run"),
        keys_file=str(tmp_path / "keys.yaml"),
        audit_dir=str(tmp_path / "audit"),
        max_body_bytes=4096,
        audit_flush_seconds=60,
        **LIMITS,
        **FLOORS,
    )


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def client(settings, services):
    with Client(create_app(settings, services, FakeExplorer())) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def assert_error(answer, status: int, code: str, message: str = "") -> dict:
    """The one error shape, its request id in the body and (once) in the header."""
    assert answer.status == status, answer.body
    err = answer.json()["error"]
    assert set(err) == {"code", "message", "request_id"} and err["code"] == code
    assert message in err["message"] and "\n" not in err["message"] and "Traceback" not in err["message"]
    assert answer.header("x-request-id") == [err["request_id"]] and err["request_id"]
    return err


def operations(client) -> list[tuple[str, str, dict]]:
    """(method, a concrete path, the operation) for every operation in the app's OpenAPI schema."""
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path), op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


SEEDS = ["u1", "u2", "u3", "u4"]


def test_every_route_in_the_schema_but_health_needs_a_key(client, keys):
    ops = operations(client)
    protected = [(m, p) for m, p, op in ops if p not in OPEN]
    assert {"/v1/audiences/expand", "/v1/rank", "/v1/recommend", "/v1/explorer/run"} <= {p for _, p in protected}
    for method, path in protected:
        for headers in ({}, bearer("rk_not-a-key"), {"x-api-key": "wrong"}, {"authorization": "Basic abc"}):
            a = client.request(method, path, json_body={}, headers=headers)
            assert_error(a, 401, "unauthorized")
            assert a.header("www-authenticate") == ["Bearer"], (method, path)
    for _, path, op in ops:  # and the schema says so
        assert ("security" in op) == (path not in OPEN), path
        if "security" in op:
            assert {"401", "403"} <= set(op["responses"]), path


def test_routes_outside_the_schema_are_protected_too(client, keys):
    assert_error(client.get("/v1/explorer/reports/x.png"), 401, "unauthorized")
    assert client.get("/v1/explorer/reports/x.png", headers=bearer(keys["rank-only"])).status == 403


def test_open_routes_answer_without_a_key(client):
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/", "/static/explorer.js"):
        assert client.get(path).status == 200, path


def test_a_key_answers_only_for_its_scopes(client, keys):
    calls = {
        "expand": ("POST", "/v1/audiences/expand", {"seed_user_ids": SEEDS, "audience_size": 10}),
        "rank": ("POST", "/v1/rank", {"user_id": "u1", "item_ids": ["i1"]}),
        "recommend": ("POST", "/v1/recommend", {"user_id": "u1", "k": 2}),
        "explorer": ("GET", "/v1/explorer/run", None),
    }
    for scope, name in SCOPED.items():
        for other, (method, path, body) in calls.items():
            a = client.request(method, path, json_body=body, headers=bearer(keys[name]))
            if other == scope:
                assert a.status == 200, (name, path, a.body)
            else:
                assert_error(a, 403, "forbidden", f"the key {name!r} lacks the {other!r} scope")
                assert keys[name] not in a.body.decode()
    for method, path, body in calls.values():
        assert client.request(method, path, json_body=body, headers=bearer(keys["admin"])).status == 200
    page = client.get("/v1/audiences/list-1?limit=2", headers=bearer(keys["expand-only"]))
    assert page.status == 200 and page.json()["total"] == 3


def test_auth_comes_before_validation(client, keys):
    """No key: a 401, never a word about the body (not even that it is not JSON)."""
    for body in (b"{not json", b'{"user_id": 1}', b"[]"):
        a = client.request("POST", "/v1/rank", content=body, headers={"content-type": "application/json"})
        assert_error(a, 401, "unauthorized")
        a = client.request("POST", "/v1/audiences/expand", content=body, headers=bearer(keys["rank-only"]))
        assert_error(a, 403, "forbidden")
    a = client.get("/v1/audiences/list-1?limit=nope")
    assert_error(a, 401, "unauthorized")


def test_the_request_id_is_the_clients_or_a_new_one(client, keys):
    err = assert_error(
        client.post("/v1/rank", {"user_id": "u"}, headers={"x-request-id": "trace-42"}), 401, "unauthorized"
    )
    assert err["request_id"] == "trace-42"
    ok = client.post(
        "/v1/rank", {"user_id": "u", "item_ids": ["i"]}, headers={**bearer(keys["admin"]), "x-request-id": "trace-43"}
    )
    assert ok.status == 200 and ok.header("x-request-id") == ["trace-43"]
    fresh = assert_error(client.post("/v1/rank", {"user_id": "u"}), 401, "unauthorized")["request_id"]
    assert uuid.UUID(fresh)
    for bad in ("x" * 200, "two words"):  # not an id to write into a log line
        assert (
            assert_error(client.post("/v1/rank", {}, headers={"x-request-id": bad}), 401, "unauthorized")["request_id"]
            != bad
        )


BAD = [
    ("/v1/audiences/expand", {"seed_user_ids": "u1,u2"}, "seed_user_ids"),
    ("/v1/audiences/expand", {"seed_user_ids": SEEDS, "method": "magic"}, "method"),
    ("/v1/audiences/expand", {"seed_user_ids": SEEDS, "colour": "red"}, "colour"),
    ("/v1/audiences/expand", {"seed_user_ids": [f"u{i}" for i in range(51)]}, "seed_user_ids is 51, more than the"),
    ("/v1/audiences/expand", {"seed_user_ids": SEEDS, "audience_size": 2001}, "audience_size is 2001, more than"),
    ("/v1/rank", {"user_id": "u1", "item_ids": list("abcdef")}, "item_ids is 6, more than the limit of 5"),
    ("/v1/recommend", {"user_id": "u1", "k": 6}, "k is 6, more than the limit of 5"),
    ("/v1/recommend", {"user_id": "u1", "k": 0}, "k"),
    ("/v1/audiences/expand", {"seed_user_ids": ["u1", "u2", " u2 ", "u2"]}, "2 distinct id(s); at least 3 are needed"),
    ("/v1/audiences/expand", {"seed_user_ids": SEEDS, "audience_size": 9}, "smallest audience served is 10"),
    ("/v1/audiences/expand", {"seed_user_ids": ["u1", "u2", "x3", "x4"]}, "only 2 of the seed ids are known users"),
]  # fmt: skip


@pytest.mark.parametrize("path, body, message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_out_of_range_and_below_the_floors_is_422(client, keys, path, body, message):
    assert_error(client.post(path, body, headers=bearer(keys["admin"])), 422, "invalid_request", message)


def test_a_page_over_the_limit_is_422_and_an_unknown_list_404(client, keys):
    h = bearer(keys["admin"])
    assert_error(client.get("/v1/audiences/list-1?limit=21", headers=h), 422, "invalid_request", "limit is 21")
    assert_error(client.get("/v1/audiences/nope", headers=h), 404, "not_found", "unknown seed list")


def test_a_body_over_max_body_bytes_is_413_however_it_arrives(client, keys):
    big = json.dumps({"user_id": "u1", "item_ids": ["x" * 5000]}).encode()
    for chunks in (1, 3):  # with Content-Length, and streamed without one
        a = client.request("POST", "/v1/rank", content=big, headers=bearer(keys["admin"]), chunks=chunks)
        assert_error(a, 413, "payload_too_large", "larger than 4096 bytes")


def test_the_upload_route_is_exempt_from_the_body_limit(client):
    assert BODY_LIMIT_EXEMPT == ("/v1/audience-jobs",)
    a = client.request("POST", "/v1/audience-jobs", content=b"x" * 10_000, headers={"content-type": "text/csv"})
    assert_error(a, 401, "unauthorized")  # the route's own checks answered, not the 413 middleware


def test_library_errors_keep_their_status_and_anything_else_is_a_500(client, keys, services, caplog):
    h = bearer(keys["admin"])
    services.fail_with = DataError("the seed list has 0 known seed(s)\nmore detail")
    assert_error(
        client.post("/v1/audiences/expand", {"seed_user_ids": SEEDS}, headers=h), 400, "bad_request", "0 known seed"
    )
    services.fail_with = ArtifactError("index missing")
    assert_error(
        client.post("/v1/audiences/expand", {"seed_user_ids": SEEDS}, headers=h), 503, "unavailable", "index missing"
    )
    services.fail_with = RuntimeError("secret internals")
    with caplog.at_level(logging.ERROR, logger="serve"):
        err = assert_error(client.post("/v1/audiences/expand", {"seed_user_ids": SEEDS}, headers=h), 500, "internal")
    assert "secret internals" not in err["message"] and err["request_id"] in caplog.text
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.request("DELETE", "/v1/rank", headers=h), 405, "method_not_allowed")
    assert_error(client.request("DELETE", "/v1/rank"), 401, "unauthorized")  # no key: not even which methods


def test_seeds_never_come_back_in_an_audience(client, keys):
    a = client.post(
        "/v1/audiences/expand",
        {"seed_user_ids": [" u1", "u2", "u3"], "audience_size": 12},
        headers=bearer(keys["admin"]),
    )
    assert a.status == 200, a.body
    members = [m["user_id"] for m in a.json()["audience"]]
    assert "u1" not in members and len(members) == 11  # the fake put u1 in; the API took it out
    assert [m["rank"] for m in a.json()["audience"]] == list(range(1, 12))


def test_expansions_and_pages_are_audited(settings, services, keys):
    app = create_app(settings, services, FakeExplorer())
    with Client(app) as c:
        for i in range(3):
            seeds = [*SEEDS, f"u{10 + i}"]
            h = {**bearer(keys["expand-only"]), "x-request-id": f"audit-{i}"}
            assert (
                c.post("/v1/audiences/expand", {"seed_user_ids": seeds, "audience_size": 10 + i}, headers=h).status
                == 200
            )
        assert (
            c.get("/v1/audiences/list-1?limit=2", headers={**bearer(keys["admin"]), "x-request-id": "page-1"}).status
            == 200
        )
        assert c.post("/v1/audiences/expand", {"seed_user_ids": SEEDS[:2]}, headers=bearer(keys["admin"])).status == 422
    rows = pq.read_table(settings.audit_dir).to_pylist()  # written at shutdown: the flush interval is a minute
    assert [r["request_id"] for r in rows] == ["audit-0", "audit-1", "audit-2", "page-1"]  # refused: not audited
    first = rows[0]
    assert (
        first["key_name"] == "expand-only" and first["route"] == "/v1/audiences/expand" and first["method"] == "blend"
    )
    assert (
        first["seed_ids_sha256"] == seed_digest([*SEEDS, "u10"]) and first["seeds"] == 5 and first["seeds_known"] == 5
    )
    assert (first["audience_size_asked"], first["audience_size_returned"]) == (10, 9)  # its seed taken out
    assert (
        rows[3]["seed_list_id"] == "list-1"
        and rows[3]["key_name"] == "admin"
        and rows[3]["audience_size_returned"] == 2
    )
    assert not any(k in json.dumps(rows, default=str) for k in keys.values())


def test_one_access_log_line_per_request_without_the_key(client, keys, caplog):
    with caplog.at_level(logging.INFO, logger="ray.serve.reco.access"):
        client.post(
            "/v1/rank",
            {"user_id": "u", "item_ids": ["i"]},
            headers={**bearer(keys["rank-only"]), "x-request-id": "log-1"},
        )
        client.get("/v1/audiences/list-1", headers={**bearer(keys["rank-only"]), "x-request-id": "log-2"})
    lines = [r.getMessage() for r in caplog.records if r.name == "ray.serve.reco.access"]
    assert re.fullmatch(r"request_id=log-1 key=rank-only method=POST route=/v1/rank status=200 ms=\d+\.\d\d", lines[0])
    assert "route=/v1/audiences/{seed_list_id:path} status=403" in lines[1]
    assert not any(k in caplog.text for k in keys.values())


def test_the_schema_documents_the_error_shape_for_every_error(client):
    spec = client.get("/openapi.json").json()
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text and "ValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    error = {"$ref": "#/components/schemas/Error"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = {int(s) for s in op["responses"] if s.isdigit()}
            assert {500, 503} <= codes, (path, method)
            if op.get("parameters") or op.get("requestBody"):
                assert 422 in codes, (path, method)
            if op.get("requestBody"):
                assert 413 in codes, (path, method)
            for s in codes - {200, 201, 202, 204}:
                assert op["responses"][str(s)]["content"]["application/json"]["schema"] == error, (path, method, s)


def test_without_a_keys_file_the_app_does_not_start(settings, services):
    with pytest.raises(ConfigError, match="keys_file is not set"):
        create_app(settings.model_copy(update={"keys_file": None}), services, FakeExplorer())
