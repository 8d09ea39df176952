"""Server info, health, readiness and metrics."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api import metrics
from api.deps import ApiDep
from api.schemas import Info

public = APIRouter(tags=["health"])
router = APIRouter(tags=["info"])


@cache
def _version(package: str) -> str:
    """Return an installed package's version (read once: the metadata scan costs about 1 ms)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


@public.get("/healthz")
async def healthz() -> dict[str, bool]:
    """Answer while the process is up (no key needed)."""
    return {"ok": True}


@public.get("/ok", include_in_schema=False)
async def ok() -> dict[str, bool]:
    """LangGraph Server's liveness path."""
    return {"ok": True}


@public.get("/readyz", responses={503: {"description": "the database is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Answer 200 when the runtime is open and the database answers (no key needed)."""
    api = getattr(request.app.state, "api", None)
    if api is None:
        return JSONResponse({"ok": False, "detail": "starting"}, status_code=503)
    try:
        async with asyncio.timeout(3):
            async with api.runtime.pool.connection() as conn:
                await conn.execute("SELECT 1")
    except Exception as exc:
        return JSONResponse({"ok": False, "detail": f"database: {type(exc).__name__}"}, status_code=503)
    return JSONResponse({"ok": True, "graphs": [e.graph_id for e in api.catalog]})


@router.get("/info", response_model=Info)
async def info(api: ApiDep) -> dict[str, Any]:
    """Describe the server: versions and supported features."""
    return {
        "version": _version("nova"),
        "langgraph_py_version": _version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False, "strict_resume": True},
        "metadata": {"graphs": [e.graph_id for e in api.catalog], "auth": api.keyring.enabled},
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(api: ApiDep) -> PlainTextResponse:
    """Runs, durations, route outcomes and errors in the Prometheus text format."""
    text = await metrics.render(api.runtime.pool)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
