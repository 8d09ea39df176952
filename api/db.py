"""Postgres: the embedded pgserver or an external server, one pool, versioned migrations."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import pq, sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_446_001  # advisory lock key serialising migrations across processes
VECTOR_HELP = (
    "the `vector` extension is not available on {url}. Install pgvector on that server "
    "(https://github.com/pgvector/pgvector#installation, e.g. `apt install postgresql-16-pgvector`) and run "
    "`CREATE EXTENSION vector;` as a superuser in the database, or unset NOVA_DATABASE_URL to use the "
    "embedded Postgres."
)


class DatabaseError(RuntimeError):
    """A database problem with a message that says how to fix it."""


@dataclass
class EmbeddedPostgres:
    """A pgserver instance in a data directory; several Nova processes share it safely.

    pgserver keeps a list of the processes holding the server under its data directory and stops it
    when the last one exits.
    """

    data_dir: Path
    _server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return its admin URI."""
        private_runtime_dir()
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = getattr(pgserver, "get_server")(self.data_dir, cleanup_mode="stop")  # noqa: B009
        except Exception as exc:
            logfile = self.data_dir / "log"
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise DatabaseError(f"embedded Postgres failed to start in {self.data_dir}: {exc}\n{tail}") from exc
        return str(self._server.get_uri())


def private_runtime_dir() -> None:
    """Give pgserver a private runtime dir for its lock file when the session has none."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run = Path(tempfile.gettempdir()) / f"nova-run-{os.getuid()}"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def database_uri(admin_uri: str, name: str) -> str:
    """Swap the database name in a pgserver URI (`postgresql://postgres:@/postgres?host=...`)."""
    return re.sub(r"(postgresql://[^/]*/)[^?]*", rf"\g<1>{name}", admin_uri, count=1)


def ensure_database(admin_uri: str, name: str, *, timeout_s: float = 10.0) -> str:
    """Create database `name` if missing, with pgvector enabled, and return its URI."""
    with psycopg.connect(admin_uri, autocommit=True, connect_timeout=int(timeout_s)) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass
    return database_uri(admin_uri, name)


def check_vector(url: str, *, timeout_s: float = 10.0) -> None:
    """Enable pgvector, or fail with a message saying how to enable it."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(timeout_s)) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to Postgres at {redact(url)}: {exc}".strip()) from exc
    except psycopg.Error as exc:
        raise DatabaseError(VECTOR_HELP.format(url=redact(url)) + f" ({exc})".rstrip()) from exc


def redact(url: str) -> str:
    """Hide a password in a connection URL."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def migration_files() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every migration, in order."""
    out = []
    for entry in resources.files("api.migrations").iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            out.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


async def migrate(pool: AsyncConnectionPool[Any]) -> list[int]:
    """Apply pending migrations in order, each in its own transaction; return the versions applied."""
    applied: list[int] = []
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS nova_migrations (version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await (await conn.execute("SELECT version FROM nova_migrations")).fetchall()
            done = {r["version"] for r in rows}
            for version, name, body in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(body.encode(), prepare=False)
                    await conn.execute("INSERT INTO nova_migrations (version, name) VALUES (%s, %s)", (version, name))
                applied.append(version)
                log.info("applied migration %04d_%s", version, name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


def json_dumps(obj: Any) -> bytes:
    """Encode compact UTF-8 JSON with orjson, several times faster than the stdlib's encoder.

    Non-string keys become strings, as the stdlib makes them; what orjson refuses (an integer past 64 bits)
    goes to the stdlib, which encodes it or raises the error it always raised.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


async def configure_json(conn: psycopg.AsyncConnection[Any]) -> None:
    """Encode json/jsonb parameters on this connection with `json_dumps`.

    Reading stays with the stdlib: orjson would read an integer past 64 bits as a float, losing digits.
    """
    set_json_dumps(json_dumps, conn)


class ConnectionLeftInPipeline(psycopg.ProgrammingError):
    """A connection came back to the pool still in pipeline mode; the pool discards it."""


async def check_returned(conn: psycopg.AsyncConnection[Any]) -> None:
    """Refuse a connection returned to the pool still in pipeline mode, so the pool closes it.

    A task cancelled inside `conn.pipeline()` (a run cancelled while its checkpoint is written) can leave libpq
    in pipeline mode with the server inside the block's transaction. libpq still reports the connection idle,
    so the pool would hand it out again and every later statement on it would run inside that transaction,
    holding its locks: in CI a run's claim, heartbeat and settle then waited on it for minutes. Closing the
    connection rolls the transaction back.
    """
    if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        raise ConnectionLeftInPipeline("connection returned in pipeline mode (a cancelled pipeline): discarded")


def make_pool(url: str, *, timeout_s: float, statement_timeout_ms: int, max_size: int = 10) -> AsyncConnectionPool[Any]:
    """Build (unopened) the one pool Nova uses: autocommit, statements prepared on first use, dict rows, orjson."""
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=timeout_s,
        open=False,
        configure=configure_json,
        reset=check_returned,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": int(timeout_s),
            "options": f"-c statement_timeout={statement_timeout_ms}",
        },
    )


@asynccontextmanager
async def open_pool(
    url: str, *, timeout_s: float = 10.0, statement_timeout_ms: int = 15000, max_size: int = 10
) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """Open the pool, wait for one connection, and close it on exit."""
    pool = make_pool(url, timeout_s=timeout_s, statement_timeout_ms=statement_timeout_ms, max_size=max_size)
    try:
        await pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:
        raise DatabaseError(f"cannot open a connection pool to {redact(url)}: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()
