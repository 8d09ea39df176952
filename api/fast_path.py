"""The turn route straight to the run manager: `POST /threads/{thread_id}/runs/wait`, past FastAPI's routing.

A chat turn over HTTP is one `runs.wait`, and it is the request Nova serves most. Through FastAPI (routing,
dependency solving, body parsing, response wrapping) the request's way from uvicorn to the run manager and back
cost 0.93 ms of CPU a turn on `nova serve` under the bench's 64-thread load (py-spy), 0.72 ms served here, of a
turn's 8 ms. This middleware serves the plain case itself and hands everything else to the app unchanged, so the
app stays the one place that answers mistakes:

- served here: a POST to the exact path, authenticated by an API key header (or a loopback caller when no keys
  are configured), with an `application/json` body within NOVA_API_MAX_BODY that validates as `RunCreate`;
- passed on, with the body it read replayed: anything else, a session cookie, a missing or wrong key, a body
  that does not parse or validate (the app answers 401 or 422 exactly as before).

What it serves runs the route's own handler (`api.routes.runs.run_and_wait`), and a failure there is answered by the
app's own exception handlers, so the answer is the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyRing, bearer_token, caller
from api.routes.runs import run_and_wait
from api.schemas import RunCreate

if TYPE_CHECKING:
    from fastapi import FastAPI

WAIT_PATH = re.compile(r"/threads/([^/]+)/runs/wait")
JSON_TYPE = re.compile(rb"application/json\s*(;.*)?", re.IGNORECASE)
Handler = Callable[[Request, Exception], Any]


class TurnFastPath:
    """Serve a plain `runs.wait` without FastAPI; pass every other request to the app (see the module doc)."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, keyring: KeyRing, default_user: str, max_body: int) -> None:
        self.app = app
        self.fastapi = fastapi
        self.keyring = keyring
        self.default_user = default_user
        self.max_body = max_body
        self.served = 0  # requests answered here, for the tests and for curiosity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request here when it is a plain turn, else pass it on."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = WAIT_PATH.fullmatch(scope["path"])
        user = self._user(scope) if found else None
        if found is None or user is None:
            await self.app(scope, receive, send)
            return
        chunks, complete = await self._read(receive)
        body = _validated(b"".join(m.get("body", b"") for m in chunks)) if complete else None
        if body is None:
            await self.app(scope, _replay(chunks, receive), send)
            return
        api = getattr(self.fastapi.state, "api", None)
        if api is None:  # the lifespan has not opened the runtime: let the app answer as it would
            await self.app(scope, _replay(chunks, receive), send)
            return
        self.served += 1
        try:
            response = await run_and_wait(api, user, found.group(1), body)
        except Exception as exc:
            response = await self._answer(scope, exc)
        await response(scope, receive, send)

    def _user(self, scope: Scope) -> str | None:
        """Return the caller's user as `current_user` would, or None to leave the request to the app."""
        headers = dict(scope["headers"])
        if b"content-type" not in headers or not JSON_TYPE.fullmatch(headers[b"content-type"]):
            return None
        raw = headers.get(b"x-api-key")
        token = raw.decode("latin-1") if raw else bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        client = scope.get("client")
        return caller(self.keyring, self.default_user, client[0] if client else None, token)

    async def _read(self, receive: Receive) -> tuple[list[Message], bool]:
        """Read the body; stop early (complete False) past the size limit or on a disconnect."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, False
            size += len(message.get("body", b""))
            if size > self.max_body:
                return messages, False
            if not message.get("more_body", False):
                return messages, True

    async def _answer(self, scope: Scope, exc: Exception) -> Any:
        """Answer a failure with the app's handler for it, as the route would have been answered."""
        handlers: dict[Any, Handler] = self.fastapi.exception_handlers
        handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
        if handler is None:
            raise exc
        return await handler(Request(scope), exc)


def _validated(raw: bytes) -> RunCreate | None:
    """Return the body as a RunCreate, or None when it does not parse or validate (the app says why)."""
    try:
        return RunCreate.model_validate_json(raw)
    except ValidationError:
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """Return a receive that gives the messages already read, then reads on."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
