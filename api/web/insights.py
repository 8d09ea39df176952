"""What the web app's health page draws: route outcomes and turn latency over time, and recent failures.

Read from `routing_log` and `turn_log`, always for one user.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from api.persistence import Pool

OUTCOMES = ("routed", "follow-up", "clarify", "clarify-answer", "override", "fallback")
WINDOW = timedelta(days=7)
BUCKETS = 24


def outcome_of(chosen: str, method: str) -> str:
    """Group a routing decision into the outcome the chart shows."""
    if chosen == "clarify":
        return "clarify"
    if method in ("embedding", "llm"):
        return "routed"
    return method if method in OUTCOMES else "routed"


def bucket_width(first: datetime, last: datetime, buckets: int = BUCKETS) -> timedelta:
    """Return a round bucket width that spreads the span over at most `buckets` buckets."""
    span = (last - first).total_seconds()
    for seconds in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400):
        if span / seconds < buckets:
            return timedelta(seconds=seconds)
    return timedelta(days=1)


def _floor(at: datetime, width: timedelta) -> datetime:
    seconds = int(width.total_seconds())
    return at - timedelta(seconds=int(at.timestamp()) % seconds, microseconds=at.microsecond)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def route_series(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Count outcomes per time bucket."""
    if not rows:
        return {"bucket_s": 0, "outcomes": list(OUTCOMES), "points": []}
    width = bucket_width(rows[0]["created_at"], rows[-1]["created_at"])
    counts: dict[datetime, Counter[str]] = {}
    for r in rows:
        counts.setdefault(_floor(r["created_at"], width), Counter())[outcome_of(r["chosen"], r["method"])] += 1
    points = [{"at": at.isoformat(), "counts": {o: c[o] for o in OUTCOMES if c[o]}} for at, c in sorted(counts.items())]
    return {"bucket_s": int(width.total_seconds()), "outcomes": list(OUTCOMES), "points": points}


def latency_series(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return p50 and p95 turn duration and the error count per time bucket."""
    if not rows:
        return {"bucket_s": 0, "points": []}
    width = bucket_width(rows[0]["created_at"], rows[-1]["created_at"])
    groups: dict[datetime, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_floor(r["created_at"], width), []).append(r)
    points = []
    for at, group in sorted(groups.items()):
        durations = [float(r["duration_ms"]) for r in group]
        points.append(
            {
                "at": at.isoformat(),
                "p50_ms": _percentile(durations, 0.5),
                "p95_ms": _percentile(durations, 0.95),
                "turns": len(group),
                "errors": sum(1 for r in group if r["status"] == "error"),
            }
        )
    return {"bucket_s": int(width.total_seconds()), "points": points}


async def insights(pool: Pool, user: str, *, limit: int = 5000) -> dict[str, Any]:
    """Return the user's route outcome and turn latency series (last 7 days) and their latest failures."""
    async with pool.connection() as conn:
        routes = await (
            await conn.execute(
                "SELECT created_at, chosen, method FROM (SELECT id, created_at, chosen, method FROM routing_log"
                " WHERE user_id = %s AND created_at > now() - %s ORDER BY id DESC LIMIT %s) r ORDER BY id",
                (user, WINDOW, limit),
            )
        ).fetchall()
        turns = await (
            await conn.execute(
                "SELECT created_at, status, duration_ms FROM (SELECT id, created_at, status, duration_ms FROM turn_log"
                " WHERE user_id = %s AND created_at > now() - %s ORDER BY id DESC LIMIT %s) t ORDER BY id",
                (user, WINDOW, limit),
            )
        ).fetchall()
        failures = await (
            await conn.execute(
                "SELECT created_at, thread_id, agent, error_node, error_kind, error FROM turn_log"
                " WHERE user_id = %s AND status = 'error' ORDER BY id DESC LIMIT 10",
                (user,),
            )
        ).fetchall()
    return {
        "routes": route_series(list(routes)),
        "latency": latency_series(list(turns)),
        "failures": [{**f, "created_at": f["created_at"].isoformat()} for f in failures],
    }
