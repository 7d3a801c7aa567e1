"""The dashboard page and its assets (app, styles, the bundled ECharts), served by the service itself: county
networks are often offline, so nothing is loaded from elsewhere. Assets are sent gzip-compressed when the browser
accepts it."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from povguard_platform.problems import NotFound

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
ASSETS = frozenset({"app.js", "app.css", "echarts.min.js"})


@lru_cache
def _asset(name: str) -> tuple[bytes, bytes]:
    data = (STATIC / name).read_bytes()
    return data, gzip.compress(data, 9)


def _send(request: Request, name: str, cache: str) -> Response:
    plain, packed = _asset(name)
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type=TYPES[Path(name).suffix], headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type=TYPES[Path(name).suffix], headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    return _send(request, "index.html", "no-cache")


@router.get("/dashboard/static/{name}")
async def asset(request: Request, name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no asset {name}")
    return _send(request, name, "max-age=3600")
