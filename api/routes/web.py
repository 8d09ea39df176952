"""The web app: its static files, login and logout with a session cookie, and the helpers its pages call."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import SESSION_COOKIE, KeyRing, Sessions, cookie_value
from api.deps import ApiDep, UserDep
from api.health import PgHealth
from api.routes.threads import owned
from api.schemas import ErrorBody
from api.web import STATIC_DIR
from api.web.insights import insights

public = APIRouter(tags=["web"], include_in_schema=False)
router = APIRouter(prefix="/web/api", tags=["web"], responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
LOGIN_FAILURE_DELAY_S = 0.5


class Login(BaseModel):
    """A login with one of the API keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: str = Field(min_length=1, max_length=512)


class Feedback(BaseModel):
    """The correction "the last request in this thread should have gone to `agent_id`"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    thread_id: str = Field(min_length=1, max_length=128)
    agent_id: str = Field(min_length=1, max_length=128)


def _static(name: str) -> FileResponse:
    root = STATIC_DIR.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise HTTPException(404, f"no such file: /app/{name}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@public.get("/")
async def home() -> RedirectResponse:
    """Send browsers to the web app."""
    return RedirectResponse("/app/", status_code=307)


@public.get("/app")
async def app_root() -> RedirectResponse:
    """Send browsers to the web app's index."""
    return RedirectResponse("/app/", status_code=307)


@public.get("/app/")
async def index() -> FileResponse:
    """Serve the single-page app."""
    return _static("index.html")


@public.get("/app/{name:path}")
async def asset(name: str) -> FileResponse:
    """Serve one of the app's static files."""
    return _static(name)


def _session_body(sessions: Sessions, request: Request) -> dict[str, Any] | None:
    cookie = cookie_value(request.headers.get("cookie"))
    session = sessions.verify(cookie) if cookie else None
    if session is None:
        return None
    return {"user": session.user, "auth": True, "csrf": sessions.csrf(session), "expires_at": session.expires_at}


@public.post("/web/login")
async def login(request: Request, body: Login) -> JSONResponse:
    """Exchange an API key for a session cookie and return the session's CSRF token."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(415, "send the login as application/json")
    keyring: KeyRing = request.app.state.keyring
    if not keyring.enabled:
        return JSONResponse({"user": request.app.state.default_user, "auth": False, "csrf": None})
    sessions = Sessions(keyring)
    issued = sessions.issue(body.api_key.strip())
    if issued is None:
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)
        raise HTTPException(401, "that key is not valid")
    cookie, session = issued
    response = JSONResponse(
        {"user": session.user, "auth": True, "csrf": sessions.csrf(session), "expires_at": session.expires_at}
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=sessions.ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@public.post("/web/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End the browser session (the cookie is cleared; a CSRF token is needed while it is valid)."""
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@public.get("/web/api/session")
async def session(request: Request) -> JSONResponse:
    """Return who the browser is logged in as and its CSRF token; 401 when it has no valid session."""
    keyring: KeyRing = request.app.state.keyring
    if not keyring.enabled:
        return JSONResponse({"user": request.app.state.default_user, "auth": False, "csrf": None})
    found = _session_body(Sessions(keyring), request)
    if found is None:
        expired = cookie_value(request.headers.get("cookie")) is not None
        detail = "your session has expired: log in again" if expired else "not logged in"
        raise HTTPException(401, detail)
    return JSONResponse(found)


@router.get("/agents")
async def agents(api: ApiDep) -> dict[str, Any]:
    """Return the agent roster (id, description) for the correction picker."""
    return {"agents": [{"id": card.id, "description": card.description} for card in api.runtime.registry]}


@router.post("/feedback")
async def feedback(api: ApiDep, user: UserDep, body: Feedback) -> dict[str, Any]:
    """Record that the thread's last routed request should have gone to another agent (as `nova feedback`)."""
    if body.agent_id not in api.runtime.registry:
        raise HTTPException(422, f"unknown agent {body.agent_id!r}")
    await owned(api, user, body.thread_id)
    rows = await api.runtime.route_log.recent(user_id=user, thread_id=body.thread_id, limit=1)
    if not rows:
        raise HTTPException(409, f"no routed request found in thread {body.thread_id}")
    row = rows[0]
    correction = await api.runtime.corrections.add(
        user_id=user, text=row["text"], correct=body.agent_id, wrong=row["chosen"], thread_id=body.thread_id
    )
    return {"id": correction, "text": row["text"], "wrong": row["chosen"], "correct": body.agent_id}


@router.get("/health")
async def health(api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Return the in-process doctor checks, the caller's recent failures, and route and latency series."""
    runtime = api.runtime
    checks = await PgHealth(runtime.pool, runtime.embed, runtime.models, runtime.turns).checks()
    out = await insights(runtime.pool, user)
    out["checks"] = [c for c in checks if c["name"] != "recent failure"]  # those are everyone's: ours are below
    return out
