"""Prometheus text exposition of runs, durations, route outcomes and errors, read from Postgres.

Counts come from the database rather than process memory, so every worker reports the same totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from api.persistence import Pool

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Mapping[str, Any], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


async def _rows(pool: Pool, query: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return list(await (await conn.execute(query.encode(), args)).fetchall())


async def render(pool: Pool) -> str:
    """Return every metric in the Prometheus text format."""
    lines: list[str] = []
    runs = await _rows(pool, "SELECT graph_id, status, count(*) AS n FROM nova_runs GROUP BY 1, 2 ORDER BY 1, 2")
    lines += _family(
        "nova_runs",
        "gauge",
        "Runs recorded by the HTTP API, by graph and status (pending and running are in flight).",
        (_sample("nova_runs", {"graph": r["graph_id"], "status": r["status"]}, r["n"]) for r in runs),
    )
    buckets = ", ".join(f"count(*) FILTER (WHERE d <= {b}) AS b{n}" for n, b in enumerate(DURATION_BUCKETS))
    durations = await _rows(
        pool,
        f"SELECT graph_id, {buckets}, count(*) AS n, coalesce(sum(d), 0) AS total FROM ("
        " SELECT graph_id, extract(epoch FROM ended_at - started_at)::float8 AS d FROM nova_runs"
        " WHERE started_at IS NOT NULL AND ended_at IS NOT NULL) s GROUP BY graph_id ORDER BY graph_id",
    )
    samples = []
    for r in durations:
        for n, bound in enumerate(DURATION_BUCKETS):
            samples.append(
                _sample("nova_run_duration_seconds_bucket", {"graph": r["graph_id"], "le": bound}, r[f"b{n}"])
            )
        samples.append(_sample("nova_run_duration_seconds_bucket", {"graph": r["graph_id"], "le": "+Inf"}, r["n"]))
        samples.append(_sample("nova_run_duration_seconds_sum", {"graph": r["graph_id"]}, r["total"]))
        samples.append(_sample("nova_run_duration_seconds_count", {"graph": r["graph_id"]}, r["n"]))
    lines += _family("nova_run_duration_seconds", "histogram", "Wall time of finished runs.", samples)
    errors = await _rows(
        pool,
        "SELECT graph_id, coalesce(error->>'error', 'unknown') AS kind, count(*) AS n FROM nova_runs"
        " WHERE status IN ('error', 'timeout') GROUP BY 1, 2 ORDER BY 1, 2",
    )
    lines += _family(
        "nova_run_errors_total",
        "counter",
        "Runs that ended in an error or a timeout, by graph and error kind.",
        (_sample("nova_run_errors_total", {"graph": r["graph_id"], "kind": r["kind"]}, r["n"]) for r in errors),
    )
    routes = await _rows(pool, "SELECT chosen, method, count(*) AS n FROM routing_log GROUP BY 1, 2 ORDER BY 1, 2")
    lines += _family(
        "nova_route_decisions_total",
        "counter",
        "Routing decisions by chosen agent (or clarify) and method.",
        (_sample("nova_route_decisions_total", {"agent": r["chosen"], "method": r["method"]}, r["n"]) for r in routes),
    )
    turns = await _rows(pool, "SELECT status, count(*) AS n FROM turn_log GROUP BY 1 ORDER BY 1")
    lines += _family(
        "nova_turns_total",
        "counter",
        "Turns of the Nova graph (CLI and HTTP) by outcome.",
        (_sample("nova_turns_total", {"status": r["status"]}, r["n"]) for r in turns),
    )
    return "\n".join(lines) + "\n"
