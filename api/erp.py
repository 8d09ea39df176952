"""The ERP behind the erp.* agents: schema and audit read from source, data through the scoping rewrite.

By default the ERP is the invented sample that ships with Nova (`graphs/erp_sample/`): its data is loaded
into Nova's own database, schema `erp_sample`, on first use. `NOVA_ERP_PROJECT`, `NOVA_ERP_DATABASE_URL`
and `NOVA_ERP_SCHEMA` point at a real project instead; `NOVA_ERP_TENANT` / `NOVA_ERP_BRANCH` fix the scope.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from api.settings import Settings
from nodes.erp.project import ProjectReader
from nodes.erp.schema import SchemaReport, describe_models, models_named
from nodes.erp.scoper import Catalogue, Refused, run_scoped
from nodes.erp.tenancy_audit import findings_for

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "graphs" / "erp_sample"
SEED_LOCK = 7_324_011
MAX_CELL = 80


@dataclass
class RuntimeErp:
    """The ERP port over the configured project, database and scope."""

    settings: Settings
    pool: AsyncConnectionPool[Any]
    url: str
    projects: ProjectReader = field(default_factory=ProjectReader)
    _seeded: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def project(self) -> Path:
        """The Django project's root."""
        return self.settings.erp_project or SAMPLE

    @property
    def issues_file(self) -> Path:
        """The issues JSON file."""
        return self.settings.erp_issues or SAMPLE / "issues.json"

    async def report(self) -> SchemaReport:
        """Return the project's schema, read again when a file of the project changed (ProjectReader)."""
        return await asyncio.to_thread(self.projects.schema, self.project)

    async def schema(self, query: str) -> str:
        """Describe the models whose app or name the query mentions (every concrete model when none does)."""
        report = await self.report()
        picked = models_named(report.models, query) or [m for m in report.models if not m.abstract]
        return "\n".join(describe_models(picked)) or "no models found"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.settings.erp_database_url:
            async with await psycopg.AsyncConnection.connect(
                self.settings.erp_database_url, autocommit=True, connect_timeout=int(self.settings.db_timeout_s)
            ) as conn:
                yield conn
            return
        await self._ensure_sample()
        async with self.pool.connection() as conn:
            yield conn

    async def _ensure_sample(self) -> None:
        """Load the sample ERP's data into Nova's database once (its own schema; nothing else is touched)."""
        if self._seeded:
            return
        async with self._lock:
            if self._seeded:
                return
            seed = (SAMPLE / "seed.sql").read_text(encoding="utf-8")
            # A connection of its own: the seed sets search_path, which must not leak into the pool.
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK,))
                try:
                    row = await (await conn.execute("SELECT to_regclass('erp_sample.orders_order') AS t")).fetchone()
                    if row is None or row[0] is None:
                        await conn.execute(seed.encode())
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (SEED_LOCK,))
            self._seeded = True

    async def query(self, user_id: str, sql: str) -> str:
        """Run the SQL scoped to the configured tenant and branch; refuse what cannot be proven safe."""
        catalogue = Catalogue.from_schema(await self.report(), schema=self.settings.erp_schema)
        tenant, branch = self.settings.erp_tenant, self.settings.erp_branch
        result = await run_scoped(
            self._connection,
            sql.strip().strip("`").removeprefix("sql").strip(),
            tenant,
            branch,
            catalogue=catalogue,
            row_limit=50,
            statement_timeout_ms=min(self.settings.statement_timeout_ms, 5000),
        )
        if isinstance(result, Refused):
            return f"Refused: {result.reason}"
        head = " | ".join(result.columns)
        rows = [" | ".join(str(v)[:MAX_CELL] for v in row) for row in result.rows]
        more = "\n(more rows than shown)" if result.truncated else ""
        return f"Scoped to tenant {tenant}, branch {branch}:\n{head}\n" + "\n".join(rows) + more

    async def tenancy(self, query: str) -> str:
        """Audit the project; keep the findings in the files or on the models the query names (findings_for)."""
        schema, report = await asyncio.to_thread(self.projects.audit, self.project)
        found, summary = findings_for(report, schema.models, query)
        lines = [f"{f.file}:{f.line} [{f.kind}] {f.reason}\n    {f.code}" for f in found]
        return "\n".join([*lines, summary])

    async def issues(self, query: str) -> str:
        """List the open issues, or show the one whose number the query gives."""
        issues = json.loads(await asyncio.to_thread(self.issues_file.read_text, encoding="utf-8"))
        number = re.search(r"\d+", query)
        if number:
            hit = [i for i in issues if i.get("number") == int(number.group())]
            if not hit:
                return f"no issue #{number.group()}; open issues: {sorted(i.get('number') for i in issues)}"
            i = hit[0]
            return f"#{i['number']} {i['title']} [{', '.join(i.get('labels', []))}]\n{i.get('body', '')}"
        return "\n".join(f"#{i['number']} {i['title']} [{', '.join(i.get('labels', []))}]" for i in issues)
