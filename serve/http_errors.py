"""Every error a client gets has one shape, a code it can branch on and the request's id.

``{"error": {"code": "...", "message": "<one line>", "request_id": "..."}}``, for:

- 400 ``bad_request``: a RecoError from the library (DataError, ConfigError), raised here or
  inside another deployment: too few known seeds, unknown recent items, an unknown retriever name
- 401 ``unauthorized`` (no key, or a key the server does not know), 403 ``forbidden`` (a key
  without the route's scope): serve/auth.py
- 404 ``not_found``: an unknown audience, user, list or path; 405 ``method_not_allowed``;
  409 ``conflict``, 415 ``unsupported_media_type`` and 429 ``too_many_requests`` (audience jobs)
- 413 ``payload_too_large``: a body over ``max_body_bytes``, counted on the bytes as they arrive
  (a client that lies about Content-Length is cut off too)
- 422 ``invalid_request``: a body or parameter that fails validation (wrong type, missing or
  unknown field, not JSON), a parameter over its limit (``k`` above ``max_k``, too many seed ids),
  or under a privacy floor
- 503 ``unavailable``: an artifact that cannot be loaded, a deployment not ready
- 500 ``internal``: anything else, with a generic message; the traceback goes to the replica's log.

:class:`RequestContext`, the outermost middleware, gives each request its id (the client's
``X-Request-ID``, else the one Ray Serve assigned, else a new one), returns it in the
``X-Request-ID`` header, turns an unhandled exception into the 500 above and writes the access
log line. :func:`document_errors` puts the same shape into the OpenAPI schema for every status a
route can return, in place of FastAPI's ``HTTPValidationError``, which the app never returns.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from reco.errors import ArtifactError, RecoError, find_reco_error
from serve.auth import Forbidden, Unauthorized, check_route, route_scope

log = logging.getLogger("serve")
# A child of Serve's logger: inside a replica its lines go to the replica's log file through
# Serve's buffered handler (1,000 records a write with RAY_SERVE_THROUGHPUT_OPTIMIZED=1).
access_log = logging.getLogger("ray.serve.reco.access")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}
DESCRIPTIONS = {
    400: "The request is well formed but the data cannot be used (e.g. too few known seeds).",
    401: "No API key, or a key the server does not know.",
    403: "The key lacks the scope this route needs.",
    404: "The id the route looks up does not exist.",
    409: "The resource is not in a state that allows this yet.",
    413: "The request body is larger than the server's max_body_bytes.",
    415: "The body's media type is not one the route reads.",
    422: "A body or parameter fails validation, exceeds its limit or is under a privacy floor.",
    429: "Too many requests of this kind for this key; try again later.",
    500: "Internal error; the traceback is in the server's log, findable by the request id.",
    503: "Not ready, or an artifact cannot be loaded.",
}
_GOOD_ID = re.compile(r"[\x21-\x7e]{1,128}")


class NotFound(RecoError):
    """An id the route looks up does not exist (404)."""


class TooLarge(RecoError):
    """A request body or upload larger than its byte limit (413)."""


class OutOfRange(RecoError):
    """A parameter over its configured limit or under a privacy floor (422)."""


def status_of(err: RecoError) -> int:
    if isinstance(err, Unauthorized):
        return 401
    if isinstance(err, Forbidden):
        return 403
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, TooLarge):
        return 413
    if isinstance(err, OutOfRange):
        return 422
    if isinstance(err, ArtifactError):
        return 503
    return 400


def request_id_of(scope: dict) -> str:
    return (scope.get("state") or {}).get("request_id", "")


def body(status: int, message: str, request_id: str) -> dict[str, Any]:
    line = (message.splitlines() or [""])[0][:500]
    return {
        "error": {
            "code": CODES.get(status, "bad_request" if status < 500 else "internal"),
            "message": line,
            "request_id": request_id,
        }
    }


def error(request: Request, status: int, message: str) -> JSONResponse:
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        status_code=status, content=body(status, message, request_id_of(request.scope)), headers=headers
    )


def original(exc: Exception) -> Exception:
    """The exception a deployment raised: Ray wraps it (RayTaskError) on its way through a handle."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            loc, msg = "body", "not valid JSON"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _known(exc: Exception) -> tuple[int, str] | None:
    """(status, one line) for an exception that carries a RecoError, wrapped or not."""
    exc = original(exc)
    reco = exc if isinstance(exc, RecoError) else find_reco_error(exc)
    return None if reco is None else (status_of(reco), str(reco))


def install(
    app: FastAPI, max_body_bytes: int, exempt: Iterable[str] = (), access: bool = True, echo_id: bool = True
) -> None:
    """Error handlers, the body-size limit (but for the ``exempt`` paths, which enforce their
    own) and :class:`RequestContext` outermost; ``echo_id``: set the X-Request-ID header
    (False inside Serve, which sets it)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            check_route(request)  # no key, no word about the body
        except RecoError as e:
            return error(request, status_of(e), str(e))
        return error(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        try:
            check_route(request)
        except RecoError as e:
            return error(request, status_of(e), str(e))
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RecoError)
    async def _reco(request: Request, exc: RecoError) -> JSONResponse:
        status, message = _known(exc) or (400, str(exc))
        return error(request, status, message)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, exempt=tuple(exempt))
    app.add_middleware(RequestContext, access=access, echo_id=echo_id)


def serve_sets_request_id() -> bool:
    """Whether this app runs in a Ray Serve replica, whose HTTP server sets X-Request-ID on every
    request and answer: Serve's proxy does, and with the HAProxy ingress (direct ingress) the
    replica's own server does, both through Serve's RequestIdMiddleware. Elsewhere (plain
    uvicorn) the app must."""
    try:
        from ray.serve.context import _get_internal_replica_context
    except ImportError:
        return False
    return _get_internal_replica_context() is not None


def _serve_request_id() -> str:
    """The id Ray Serve gave the request in this replica ('' outside Serve)."""
    try:
        from ray.serve.context import _get_serve_request_context
    except ImportError:
        return ""
    return _get_serve_request_context().request_id or ""


def route_path(scope: dict) -> str:
    """The request's path below the app's root path (Serve's route prefix)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return (path[len(root) :] or "/") if root and path.startswith(root) else path


class RequestContext:
    """ASGI middleware: the request id, the X-Request-ID header, the last-resort 500 and the
    access log line (request id, key name, method, route, status, ms)."""

    def __init__(self, app, access: bool = True, echo_id: bool = True):
        self.app, self.access, self.echo_id = app, access, echo_id

    @staticmethod
    def request_id(scope: dict) -> str:
        for k, v in scope.get("headers") or ():
            if k == b"x-request-id":
                given = v.decode("latin-1")
                if _GOOD_ID.fullmatch(given):
                    return given
                break
        return _serve_request_id() or str(uuid.uuid4())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = self.request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 0

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.echo_id:
                    message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the answer has started: nothing left to say but the log line
                log.exception("request %s failed after its answer started", rid)
                raise
            known = _known(exc)
            if known is None:
                log.exception("unhandled error on %s %s (request %s)", scope.get("method"), route_path(scope), rid)
            status, message = known or (500, "internal error (see the server log, request id in this answer)")
            await _send_json(send_with_id, status, body(status, message, rid))
        finally:
            if self.access:
                route = scope.get("route")
                caller = state.get("caller")
                access_log.info(
                    "request_id=%s key=%s method=%s route=%s status=%d ms=%.2f",
                    rid,
                    caller.name if caller is not None else "-",
                    scope.get("method", ""),
                    getattr(route, "path", None) or route_path(scope)[:200],
                    status,
                    (time.perf_counter() - t0) * 1000,
                )


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413, but on ``exempt``
    paths (an upload route that streams its body and enforces a larger limit of its own)."""

    def __init__(self, app, max_bytes: int, exempt: tuple[str, ...] = ()):
        self.app, self.max_bytes, self.exempt = app, max_bytes, frozenset(exempt)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.exempt and route_path(scope) in self.exempt):
            return await self.app(scope, receive, send)
        for k, length in scope.get("headers") or ():
            if k == b"content-length":
                if length.isdigit() and int(length) > self.max_bytes:
                    return await self._refuse(scope, send)
                break
        seen, refused = 0, False

        async def counted():
            """The body as it arrives; past the limit, the 413 is sent and the app told the client left."""
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    await self._refuse(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message):
            if not refused:
                await send(message)

        return await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope, send) -> None:
        message = f"request body larger than {self.max_bytes} bytes"
        await _send_json(send, 413, body(413, message, request_id_of(scope)))


async def _send_json(send, status: int, content: dict) -> None:
    data = to_json(content)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# -- the OpenAPI schema ---------------------------------------------------------------------------

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer <key>."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key, as X-API-Key."},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the error shape for each status (401, 403, 413, 422, 500 and 503
    are added where they apply by :func:`document_errors`)."""
    from serve.schemas import Error

    return {s: {"model": Error, "description": DESCRIPTIONS.get(s, CODES.get(s, ""))} for s in statuses}


def api_routes(app: FastAPI) -> list[tuple[str, set[str], str | None]]:
    """(path, methods, scope needed) of every API route, those of included routers too."""
    try:  # FastAPI >= 0.16x keeps included routers as routers; this walks them as its OpenAPI does
        from fastapi.routing import iter_route_contexts

        pairs = [(c, c.original_route) for c in iter_route_contexts(app.routes)]
    except ImportError:
        pairs = [(r, r) for r in app.routes]
    return [
        (ctx.path_format, set(ctx.methods or ()), route_scope(route))
        for ctx, route in pairs
        if isinstance(route, APIRoute)
    ]


def document_errors(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema with every error a route can return in the one error shape: 401
    and 403 (and the security schemes) on routes that need a key, 413 on routes with a body, 422
    on routes with parameters or a body (not FastAPI's ``HTTPValidationError``), 500 and 503 on
    all; and the X-Request-ID header on every answer."""
    scopes = {(path, m.lower()): scope for path, methods, scope in api_routes(app) for m in methods}
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    header = {
        "X-Request-ID": {
            "description": "The request's id: the client's X-Request-ID if it sent one, else a new one.",
            "schema": {"type": "string"},
        }
    }
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            wanted = {500, 503}
            scope = scopes.get((path, method))
            if scope is not None:
                wanted |= {401, 403}
                op["security"] = [{"bearer": []}, {"apiKey": []}]
                note = f"Needs an API key with the `{scope}` scope (or `admin`)."
                op["description"] = f"{op.get('description', '').strip()}\n\n{note}".strip()
            if op.get("parameters") or op.get("requestBody"):
                wanted.add(422)
            if op.get("requestBody"):
                wanted.add(413)
            out = op.setdefault("responses", {})
            for s in wanted | {int(s) for s in out if str(s).isdigit() and int(s) >= 400}:
                out[str(s)] = {"description": DESCRIPTIONS.get(s, CODES.get(s, "")), **ref}
            for answer in out.values():
                answer.setdefault("headers", {}).update(header)
    if "Error" not in schemas:  # no route declared one: add the models by hand
        from serve.schemas import Error

        defs = Error.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(defs.pop("$defs", {}))
        schemas["Error"] = defs
    return schema
