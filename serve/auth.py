"""API keys and scopes: who may call which route.

A key is a random token the client sends as ``Authorization: Bearer <key>`` (or ``X-API-Key``).
The server keeps only each key's SHA-256, with a name (for the access and audit logs) and its
scopes, in a keys file the Serve config names (``keys_file``; a Kubernetes Secret mounted as a
file under KubeRay). A lookup hashes the presented key and compares its digest with every known
digest in constant time, so the time taken says nothing about which key, if any, matched. Keys
are never logged; error messages name the key's name, never the key.

A route asks for a scope with ``Depends(require("expand"))``; ``admin`` holds every scope. Auth
comes before validation: a request without a valid key is a 401 even when its body is invalid
(:func:`check_route`, called by the validation error handler), so an anonymous client learns
nothing about a route's parameters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import yaml
from fastapi import Request

from reco.errors import ConfigError, RecoError
from reco.storage import locate

Scope = Literal["expand", "rank", "recommend", "explorer", "admin"]
SCOPES: frozenset[str] = frozenset(get_args(Scope))
KEY_PREFIX = "rk_"
_HEX64 = re.compile(r"[0-9a-f]{64}")
NO_KEYS_FILE = (
    "serve settings: keys_file is not set, and the API does not run without keys: make one with "
    "`python -m serve.keys new --name NAME --scopes admin --file keys.yaml` and set args.keys_file "
    "(scripts/serve.sh does this for local development)"
)


class Unauthorized(RecoError):
    """No key, or a key the server does not know (401)."""


class Forbidden(RecoError):
    """A known key without the scope the route needs (403)."""


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key's name (never the key) and what it may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest(key: str) -> str:
    """The hex SHA-256 of a key: what a keys file holds."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe), prefixed so it is recognisable in a leaked file."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def entry(name: str, key: str, scopes: Iterable[str]) -> dict[str, Any]:
    """The keys-file entry of ``key``: its name, hash and scopes (the key itself is not in it)."""
    scopes = sorted(set(scopes))
    bad = set(scopes) - SCOPES
    if bad or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(sorted(SCOPES))}; got {', '.join(scopes) or 'none'}")
    if not name.strip():
        raise ConfigError("a key needs a name (it is what the audit log records)")
    return {"name": name.strip(), "sha256": digest(key), "scopes": scopes}


@dataclass(frozen=True)
class KeyStore:
    """The known keys: each digest (32 bytes) with its caller, compared in constant time."""

    digests: tuple[bytes, ...]
    callers: tuple[Caller, ...]

    @classmethod
    def from_entries(cls, entries: list[Any], where: str) -> KeyStore:
        digests: list[bytes] = []
        callers: list[Caller] = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or not {"name", "sha256", "scopes"} <= set(e):
                raise ConfigError(f"{where}: key {i} needs name, sha256 and scopes")
            name, sha, scopes = str(e["name"]), str(e["sha256"]).lower(), e["scopes"]
            if not _HEX64.fullmatch(sha):
                raise ConfigError(
                    f"{where}: key {name!r}: sha256 is not 64 hex digits (the file holds hashes, not keys)"
                )
            if not isinstance(scopes, list) or not scopes:
                raise ConfigError(f"{where}: key {name!r}: scopes must be a non-empty list")
            unknown = set(map(str, scopes)) - SCOPES
            if unknown:
                raise ConfigError(
                    f"{where}: key {name!r} has unknown scope(s) {sorted(unknown)}; known: {', '.join(sorted(SCOPES))}"
                )
            raw = bytes.fromhex(sha)
            if raw in digests:
                raise ConfigError(
                    f"{where}: key {name!r} has the same sha256 as key {callers[digests.index(raw)].name!r}"
                )
            digests.append(raw)
            callers.append(Caller(name, frozenset(map(str, scopes))))
        if not callers:
            raise ConfigError(f"{where}: no keys (add one with `python -m serve.keys new --file ...`)")
        return cls(tuple(digests), tuple(callers))

    @classmethod
    def load(cls, uri: str) -> KeyStore:
        """A YAML or JSON file ``{keys: [{name, sha256, scopes}]}``: a local path or a URI."""
        try:
            text = locate(uri, "keys file").require_file("keys file").read_bytes().decode()
        except RecoError as e:
            raise ConfigError(str(e)) from None
        try:
            data = json.loads(text) if uri.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"keys file {uri} cannot be parsed: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ConfigError(f"keys file {uri}: expected a mapping with a list under 'keys'")
        return cls.from_entries(data["keys"], f"keys file {uri}")

    def identify(self, key: str | None) -> Caller:
        """The caller whose key this is, or :class:`Unauthorized`. Every known digest is compared,
        whether or not an earlier one matched, so the time does not depend on which one does."""
        if not key:
            raise Unauthorized("an API key is required: send Authorization: Bearer <key>")
        presented = hashlib.sha256(key.encode(errors="replace")).digest()
        found = -1
        for i, known in enumerate(self.digests):
            if hmac.compare_digest(presented, known):
                found = i
        if found < 0:
            raise Unauthorized("the API key is not valid")
        return self.callers[found]


def load_keys(keys_file: str | None) -> KeyStore:
    """The settings' keys file loaded, or the one-line ConfigError naming the fix: auth is never off."""
    if not keys_file:
        raise ConfigError(NO_KEYS_FILE)
    try:
        return KeyStore.load(keys_file)
    except ConfigError as e:
        if "not found" not in str(e):
            raise
        fix = f"python -m serve.keys new --name NAME --scopes admin --file {keys_file}"
        raise ConfigError(f"{e}: make it with `{fix}` (scripts/serve.sh makes one for development)") from None


def presented_key(request: Request) -> str | None:
    """The key the request carries: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    header = request.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key")


def authorize(request: Request, scope: str) -> Caller:
    """The request's caller if its key holds ``scope``; 401 or 403 otherwise. Remembered on the
    request (``request.state.caller``) for the access log."""
    caller = request.app.state.keys.identify(presented_key(request))
    request.state.caller = caller
    if not caller.may(scope):
        raise Forbidden(f"the key {caller.name!r} lacks the {scope!r} scope")
    return caller


def require(scope: Scope) -> Callable[[Request], Caller]:
    """A FastAPI dependency: the request's :class:`Caller`, or 401/403."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> Caller:  # async: run inline, not in FastAPI's thread pool
        return authorize(request, scope)

    dependency.required_scope = scope  # type: ignore[attr-defined]  # how route_scope finds it
    return dependency


def route_scope(route: Any) -> str | None:
    """The scope a route's dependencies require (None: an open route)."""
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        d = stack.pop()
        scope = getattr(d.call, "required_scope", None)
        if scope is not None:
            return scope
        stack.extend(d.dependencies)
    return None


def check_route(request: Request) -> None:
    """Raise 401/403 if the route this request matched needs a scope its key lacks. For the
    error handlers of what FastAPI checks before dependencies run (the body's JSON, form parsing)."""
    route = request.scope.get("route")
    scope = route_scope(route) if route is not None else None
    if scope is not None and not hasattr(request.state, "caller"):
        authorize(request, scope)
