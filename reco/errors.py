"""Errors a user can act on.

Every error raised for bad input (a wrong path, a malformed file, a bad config key, an unknown
id) is a RecoError whose message is one line that names the thing at fault. Job entry points
print that line and exit non-zero instead of a traceback.
"""

from __future__ import annotations

import re


class RecoError(ValueError):
    """Base class of every user-facing error."""


class ConfigError(RecoError):
    """A config file or a --set override is invalid."""


class DataError(RecoError):
    """Input data is missing, empty or malformed."""


class ArtifactError(RecoError):
    """A run-directory artifact is missing, incomplete or fails its checksum."""


_REMOTE = re.compile(r"reco\.errors\.(ConfigError|DataError|ArtifactError|RecoError): (.+)")


def find_reco_error(exc: BaseException) -> RecoError | None:
    """The RecoError behind ``exc``, following Ray's wrappers and exception chains.

    Ray re-raises a worker's exception wrapped (``RayTaskError`` with ``.cause``, chained with
    ``__cause__``, or, from Ray Data, only as text in a ``UserCodeException``'s message); the
    user wants the original one-line message, not the wrapper's traceback.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    texts: list[str] = []
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, RecoError) and type(e).__module__ == __name__:
            return e
        texts.append(str(e))
        for nxt in (getattr(e, "cause", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    for text in texts:
        matches = _REMOTE.findall(text)
        if matches:
            name, msg = matches[-1]
            return {"ConfigError": ConfigError, "DataError": DataError, "ArtifactError": ArtifactError}.get(
                name, RecoError
            )(msg.strip())
    return None


def first_line(e: BaseException | str) -> str:
    """The first non-blank line of an error's text (its type's name if it has none), for one-line errors."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else (type(e).__name__ if isinstance(e, BaseException) else "")
