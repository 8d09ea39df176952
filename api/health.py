"""The health port for the `orchestration.health` agent: database, embedder, model endpoint, recent failures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from api.persistence import PgTurnLog, Pool
from nodes.embeddings import Embedder
from nodes.models import ModelLoader


@dataclass
class PgHealth:
    """Checks that run inside an opened runtime (cheap: no model call)."""

    pool: Pool
    embed: Embedder
    models: ModelLoader | None
    turns: PgTurnLog

    async def checks(self) -> list[dict[str, Any]]:
        """Return `{name, ok, detail}` per check, slowest turns and recent failures included."""
        out: list[dict[str, Any]] = []
        started = time.perf_counter()
        try:
            async with self.pool.connection() as conn:
                row = await (await conn.execute("SELECT max(version) AS v FROM nova_migrations")).fetchone()
                slow = await (
                    await conn.execute(
                        "SELECT agent, round(percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)) AS p95,"
                        " count(*) AS n FROM turn_log WHERE created_at > now() - interval '7 days'"
                        " GROUP BY agent ORDER BY p95 DESC LIMIT 3"
                    )
                ).fetchall()
            ms = (time.perf_counter() - started) * 1000
            out.append({"name": "database", "ok": True, "detail": f"schema v{row['v'] if row else '?'}, {ms:.1f} ms"})
            for r in slow:
                out.append(
                    {
                        "name": f"slowest agent {r['agent']}",
                        "ok": True,
                        "detail": f"p95 {r['p95']} ms over {r['n']} turns (7 days)",
                    }
                )
        except Exception as exc:
            out.append({"name": "database", "ok": False, "detail": f"{type(exc).__name__}: {exc}"})
        out.append({"name": "embedder", "ok": True, "detail": f"{self.embed.name}, {self.embed.dim} dims"})
        kind = self.models.kind if self.models else "none"
        out.append({"name": "model endpoint", "ok": self.models is not None, "detail": f"{kind} endpoint"})
        try:
            failures = await self.turns.recent_failures(limit=5)
        except Exception:
            failures = []
        for f in failures:
            out.append(
                {
                    "name": "recent failure",
                    "ok": False,
                    "detail": f"{str(f['created_at'])[:19]} {f['error_node']}: {f['error_kind']} {f['error']}",
                }
            )
        return out
