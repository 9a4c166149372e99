"""The explorer's routes: its page at ``/``, its static files and its JSON under /v1/explorer.

The page (serve/static/) is plain HTML, CSS and an ES module, no build step. It only uses
relative URLs, and ``/`` writes a ``<base>`` from the request's root path, so the same app
works under any Serve ``route_prefix``. The page and its static files are open; the JSON under
/v1/explorer needs a key with the ``explorer`` scope, which the page asks for and keeps in the
tab's sessionStorage only. The routes reach the service as
``request.app.state.explorer`` (serve/explorer.py). Handlers are plain ``def``: FastAPI runs
them in its thread pool, so a projection never blocks the event loop of the JSON API.
"""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import Field

from serve.auth import require
from serve.explorer import ExplorerService
from serve.http_errors import NotFound, responses
from serve.schemas import Request as Body

STATIC = Path(__file__).resolve().parent / "static"
BASE_TAG = '<base href="./">'

router = APIRouter()  # the page and its files: open
data = APIRouter(dependencies=[Depends(require("explorer"))])  # its JSON: included at the end


class MapRequest(Body):
    seed_user_ids: list[str] = Field(default_factory=list, description="Raw user ids of the seeds.")
    audience_user_ids: list[str] = Field(default_factory=list, description="Raw user ids of the audience.")


class TopTopicsRequest(Body):
    user_ids: list[str] = Field(..., min_length=1)
    k: int = Field(3, ge=1, le=20)


def _explorer(request: Request) -> ExplorerService:
    return request.app.state.explorer


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    """The page, its <base> at the app's root path (Serve sets it to the route prefix), so its
    relative URLs resolve even at ``/prefix`` without the trailing slash; with no root path
    the page keeps ``./``."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(text.replace(BASE_TAG, f'<base href="{html.escape(root)}/">', 1) if root else text)


@router.get("/static/{name}", include_in_schema=False, responses=responses(404))
def static_file(name: str) -> FileResponse:
    """One file of serve/static/ (no sub-folders, so no path ever leaves it)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    media = "text/javascript" if name.endswith(".js") else mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"cache-control": "no-cache"})


@data.get("/v1/explorer/run")
def run_info(request: Request) -> dict[str, Any]:
    """Which run and data set the app serves, its size and limits."""
    return _explorer(request).run_info()


@data.get("/v1/explorer/seed-lists")
def seed_lists(request: Request) -> dict[str, Any]:
    """Prepared seed lists (id, label, size bucket, size), small lists first."""
    return {"lists": _explorer(request).seed_lists()}


@data.get("/v1/explorer/seed-lists/{list_id:path}", responses=responses(404))
def seed_list(list_id: str, request: Request) -> dict[str, Any]:
    """One prepared seed list with its members' raw user ids."""
    return _explorer(request).seed_list(list_id)


@data.get("/v1/explorer/users/{user_id}/history", responses=responses(404))
def history(user_id: str, request: Request) -> dict[str, Any]:
    """A user's items, heaviest first, with names (movie titles, artists) where the data has them."""
    return _explorer(request).history(user_id)


@data.post("/v1/explorer/top-topics", responses=responses(422))
def top_topics(req: TopTopicsRequest, request: Request) -> dict[str, Any]:
    """Each known user's k heaviest topics, for the audience table."""
    return {"users": _explorer(request).top_topics(req.user_ids, req.k)}


@data.post("/v1/explorer/map", responses=responses(422, 503))
def map_points(req: MapRequest, request: Request) -> dict[str, Any]:
    """2-D PCA points of the seeds, the audience and a fixed background sample."""
    return _explorer(request).map_points(req.seed_user_ids, req.audience_user_ids)


@data.get("/v1/explorer/evaluation")
def evaluation(request: Request) -> dict[str, Any]:
    """The run's offline evaluation: expansion by seed-size bucket, ranking, embeddings, plots."""
    return _explorer(request).evaluation()


@data.get("/v1/explorer/reports/{name}", include_in_schema=False, responses=responses(404))
def report(name: str, request: Request) -> Response:
    """A PNG the evaluation wrote under reports/."""
    return Response(_explorer(request).report(name), media_type="image/png")


router.include_router(data)
