"""A minimal in-process client for an ASGI app, for tests without a server or httpx: one request in,
(status, headers, JSON or bytes) out; the app's lifespan run around a block of requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Requests to ``app`` on one event loop, inside its lifespan (``with Client(app) as c``)."""

    def __init__(self, app, headers: dict[str, str] | None = None):
        self.app, self.headers = app, headers or {}
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> Client:
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.loop.run_until_complete(self._lifespan.__aenter__())
        return self

    def __exit__(self, *exc) -> None:
        self.loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self.loop.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        chunks: int = 1,
    ) -> Answer:
        """``content`` is sent in ``chunks`` pieces, without Content-Length when ``chunks`` > 1."""
        return self.loop.run_until_complete(self._request(method, url, json_body, content, headers, chunks))

    def get(self, url: str, **kw) -> Answer:
        return self.request("GET", url, **kw)

    def post(self, url: str, body: Any = None, **kw) -> Answer:
        return self.request("POST", url, json_body=body, **kw)

    async def _request(self, method, url, json_body, content, headers, chunks) -> Answer:
        parts = urlsplit(url)
        raw = content if content is not None else (b"" if json_body is None else json.dumps(json_body).encode())
        h = {**self.headers, **(headers or {})}
        if json_body is not None:
            h.setdefault("content-type", "application/json")
        if chunks == 1:
            h["content-length"] = str(len(raw))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in h.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        size = max(1, -(-len(raw) // chunks))
        pieces = [raw[i : i + size] for i in range(0, len(raw), size)] or [b""]
        messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
        out: dict[str, Any] = {"status": 0, "headers": [], "body": b""}

        async def receive():
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)  # nothing more: as a client waiting for its answer
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return Answer(out["status"], out["headers"], out["body"])


@contextmanager
def serving(app, headers: dict[str, str] | None = None) -> Iterator[Client]:
    with Client(app, headers) as c:
        yield c
