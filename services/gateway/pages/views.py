"""The wall (/wall, /wall/{district}) and the operator console (/console): static pages, plain ES modules,
no CDN. They sign in with a bearer token (URL fragment #token=… or pasted) and read the /v1 API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from services.gateway.geo import unit_tree

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/wall")


@router.get("/wall")
def wall() -> FileResponse:
    return FileResponse(STATIC / "wall.html", media_type="text/html")


@router.get("/wall/{district}")
def district_wall(district: str) -> FileResponse:
    u = unit_tree().units.get(district)
    if u is None or u.level != "district":
        raise HTTPException(404, "Không có huyện này / no such district")
    return FileResponse(STATIC / "wall.html", media_type="text/html")


@router.get("/console")
def console() -> FileResponse:
    return FileResponse(STATIC / "console.html", media_type="text/html")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"))
