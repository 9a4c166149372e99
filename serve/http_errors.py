"""Bad requests become 4xx answers with a one-line reason, never a 500 with a traceback.

- a body that fails validation (wrong type, missing field, unknown field): 422
- a body larger than the configured limit: 413 (checked on the bytes as they arrive, so a
  client that lies about Content-Length is cut off too)
- a RecoError from the library, raised here or inside another deployment: DataError and
  ConfigError 400 (404 for an unknown audience), ArtifactError 503
- anything else: 500 with a generic message; the traceback goes to the replica's log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reco.errors import ArtifactError, RecoError, find_reco_error

log = logging.getLogger("serve")


class NotFound(RecoError):
    """An id the route looks up does not exist (404)."""


class TooLarge(RecoError):
    """A request asks for more than the configured limit (413)."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            loc, msg = "body", "not valid JSON"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def original(exc: Exception) -> Exception:
    """The exception a deployment raised: Ray wraps it (RayTaskError) on its way through a handle."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def status_of(err: RecoError) -> int:
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, TooLarge):
        return 413
    if isinstance(err, ArtifactError):
        return 503
    return 400


def install(app: FastAPI, max_body_bytes: int) -> None:
    """Error handlers and the body-size limit."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RecoError)
    async def _reco(request: Request, exc: RecoError) -> JSONResponse:
        return await _any(request, exc)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        exc = original(exc)
        reco = exc if isinstance(exc, RecoError) else find_reco_error(exc)
        if reco is not None:
            return error(status_of(reco), str(reco).splitlines()[0])
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal error (see the server log)")

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_413(send, self.max_bytes)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            return await self.app(scope, counted, send)
        except _BodyTooLarge:
            return await _send_413(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _send_413(send, limit: int) -> None:
    body = f'{{"error": "request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
