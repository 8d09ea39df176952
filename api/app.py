"""The HTTP API: the LangGraph Server API subset the SDK, Studio and Agent Inbox speak, and Nova's endpoints.

Serve it with `nova serve`, or `uvicorn api.app:create_app --factory`.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyRing, SessionAuth
from api.catalog import build_catalog
from api.deps import Api, ApiSettings, current_user
from api.fast_path import TurnFastPath
from api.routes import assistants, info, memory, nova, runs, store, threads, web
from api.runs import RunManager
from api.runtime import NovaRuntime, settle_heap
from api.settings import Settings, get_settings
from api.threads import ApiThreads

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def error_body(status: int, detail: Any, message: str | None = None) -> JSONResponse:
    """Return the JSON error every failure answers with."""
    text = message or (detail if isinstance(detail, str) else "request failed")
    return JSONResponse({"detail": detail, "message": text}, status_code=status)


class BodyTooLarge(HTTPException):
    """The request body is over NOVA_API_MAX_BODY."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {limit} bytes")


class BodyLimit:
    """Refuse request bodies over a size, by declared length or by counting what arrives."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            response = error_body(413, BodyTooLarge(self.max_body).detail)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        await self.app(scope, counted, send)


def _summary(errors: list[Any]) -> str:
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "invalid request: " + "; ".join(parts)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
    return error_body(422, errors, _summary(errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = error_body(exc.status_code, exc.detail)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """Answer 503 with Retry-After when no database connection came free in time: overload, not a server bug."""
    log.warning("no database connection for %s %s: %s", request.method, request.url.path, exc)
    response = error_body(503, "the database is busy: no connection came free within NOVA_DB_TIMEOUT_S; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_body(500, "internal server error")


@asynccontextmanager
async def startup_lock(home: Path) -> AsyncIterator[None]:
    """Let one worker at a time open the runtime: the saver's and store's setup() race on a fresh database."""

    def acquire() -> int:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / ".serve-startup.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    fd = await asyncio.to_thread(acquire)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None, *, fast_path: bool = True
) -> FastAPI:
    """Build the app; its lifespan opens one NovaRuntime per worker process.

    `fast_path=False` leaves every request to FastAPI, the turn route too (api/fast_path.py): the tests compare.
    """
    nova_settings = settings or get_settings()
    options = api_settings or ApiSettings()
    keyring = KeyRing.parse(options.keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with startup_lock(nova_settings.home):
            runtime = await NovaRuntime.open(nova_settings, need_model=True)
        try:
            catalog = build_catalog(
                runtime.graphs, checkpointer=runtime.saver, store=runtime.store, extra=options.graphs
            )
            async with runtime.pool.connection() as conn:
                row = await (await conn.execute("SELECT applied_at FROM nova_migrations WHERE version = 3")).fetchone()
            if row is not None:
                catalog.created_at = row["applied_at"]
            thread_rows = ApiThreads(runtime.pool)
            manager = RunManager(
                runtime,
                catalog,
                thread_rows,
                run_timeout_s=options.run_timeout_s,
                heartbeat_s=options.heartbeat_s,
                stale_s=options.stale_s,
            )
            await manager.start()
            settle_heap()  # after start-up: what it loaded lives as long as the worker
            app.state.api = Api(options, keyring, runtime, catalog, thread_rows, manager)
            try:
                yield
            finally:
                await manager.close()
        finally:
            await runtime.close()

    app = FastAPI(
        title="Nova",
        version=VERSION,
        summary="A personal multi-agent runtime, speaking the LangGraph Server API.",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.keyring = keyring
    app.state.default_user = nova_settings.user
    app.add_middleware(BodyLimit, max_body=options.max_body)
    app.add_middleware(SessionAuth, keyring=keyring)
    if fast_path:
        app.add_middleware(
            TurnFastPath, fastapi=app, keyring=keyring, default_user=nova_settings.user, max_body=options.max_body
        )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(Exception, _unexpected_error)

    authed = [Depends(current_user)]
    app.include_router(info.public)
    app.include_router(web.public)
    # Routes are matched in order: the per-turn ones (runs, then threads) first. No two routers share a path.
    for module in (runs, threads, assistants, info, store, nova, web, memory):
        app.include_router(module.router, dependencies=authed)

    @app.get("/openapi.json", include_in_schema=False, dependencies=authed)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    return app
