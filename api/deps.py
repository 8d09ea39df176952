"""Dependencies of the HTTP handlers: the API's settings, the opened services, and the caller's user id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth import KeyRing, caller

if TYPE_CHECKING:
    from api.catalog import GraphCatalog
    from api.runs import RunManager
    from api.runtime import NovaRuntime
    from api.threads import ApiThreads


class ApiSettings(BaseSettings):
    """HTTP server settings, every field an environment variable `NOVA_API_*`."""

    model_config = SettingsConfigDict(env_prefix="NOVA_API_", extra="ignore")

    keys: str = Field(default="", description="comma-separated key=user pairs; unset = loopback-only, no auth")
    max_body: int = Field(default=1024 * 1024, ge=1024, description="largest accepted request body in bytes")
    run_timeout_s: float = Field(default=900.0, gt=0, description="a run still going after this ends as timeout")
    heartbeat_s: float = Field(default=1.0, gt=0, description="how often a worker heartbeats and polls cancels")
    stale_s: float = Field(default=15.0, gt=0, description="a run without heartbeat this long lost its worker")
    graphs: str = Field(default="", description="extra graphs to serve: name=module:attr,...")


@dataclass
class Api:
    """What the handlers use, opened once per worker process by the app's lifespan."""

    settings: ApiSettings
    keyring: KeyRing
    runtime: NovaRuntime
    catalog: GraphCatalog
    threads: ApiThreads
    runs: RunManager


async def get_api(request: Request) -> Api:
    """Return the services opened by the lifespan."""
    api: Api = request.app.state.api
    return api


_api_key = APIKeyHeader(name="x-api-key", auto_error=False, description="an API key from NOVA_API_KEYS")
_bearer = HTTPBearer(auto_error=False, description="the same key as a bearer token")


async def current_user(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Authenticate the caller and return their user id; 401 without a valid key."""
    keyring: KeyRing = request.app.state.keyring
    token = api_key or (bearer.credentials if bearer else None)
    host = request.client.host if request.client is not None else None
    found = caller(keyring, request.app.state.default_user, host, token)
    if found is not None:
        return found
    if not keyring.enabled:
        raise HTTPException(
            status_code=401, detail="no API keys are configured (NOVA_API_KEYS), so only local clients may call"
        )
    raise HTTPException(
        status_code=401,
        detail="missing or invalid API key: send x-api-key or Authorization: Bearer",
        headers={"WWW-Authenticate": "Bearer"},
    )


ApiDep = Annotated[Api, Depends(get_api)]
UserDep = Annotated[str, Depends(current_user)]
