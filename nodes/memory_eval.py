"""Memory evaluation: scenarios of statements and questions, scored on what the read path recalls.

One scenario per JSON line::

    {"id": "home-city-moved", "steps": [
        {"user": "u1", "thread": "t1", "say": "remember that my home city is Sheffield"},
        {"user": "u1", "thread": "t2", "say": "I've moved to York now"},
        {"user": "u1", "thread": "t9", "ask": "where do I live?", "expect": ["York"], "reject": ["Sheffield"]}]}

`say` steps go through the write path (`observe`: extraction, triage, supersession); `ask` steps through
the read path (`recall`, optionally with `"project": "<slug>"`) and then the write path too, as every user
message does. Each scenario user becomes a user id of its own, so scenarios never see each other.

Metrics:
    current_recall: share of asks with `expect` where one recalled memory contains every expect string
        (case-insensitive) and no recalled memory contains a reject string.
    stale_leakage: share of asks with `reject` where a recalled memory contains a reject string.
    duplicates: live memories that repeat another live memory of the same user (exactly, or nearly on
        the same subject), over all live memories at the end of each scenario.
    cross_user_leakage: share of asks that recalled anything owned by another user.
    n: number of asks scored.
    p95_ms: 95th percentile of recall latency, query embedding included.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodes.evaluation import numbered_json_lines
from nodes.memory import MemoryStore
from nodes.services import TurnRef

STEP_KEYS = {"user", "thread", "say", "ask", "expect", "reject", "project"}


class ScenarioError(ValueError):
    """The scenario file is invalid; the message lists every bad line."""


@dataclass(frozen=True)
class Step:
    """One message of a scenario: a statement (`say`) or a scored question (`ask`)."""

    user: str
    thread: str
    say: str | None = None
    ask: str | None = None
    expect: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()
    project: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A named sequence of steps."""

    id: str
    line: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class AskResult:
    """How one ask scored."""

    scenario: str
    user: str
    ask: str
    expect: tuple[str, ...]
    reject: tuple[str, ...]
    correct: bool
    stale: bool
    leaked: bool
    latency_ms: float
    recalled: tuple[str, ...]


@dataclass
class MemoryEvalReport:
    """Everything measured in one run."""

    scenarios: int = 0
    asks: list[AskResult] = field(default_factory=list)
    duplicate_memories: int = 0
    live_memories: int = 0

    def metrics(self) -> dict[str, float | int]:
        """Return the headline metrics (the keys `--json` prints)."""
        with_expect = [a for a in self.asks if a.expect]
        with_reject = [a for a in self.asks if a.reject]
        latencies = np.asarray([a.latency_ms for a in self.asks]) if self.asks else np.zeros(1)
        return {
            "current_recall": _ratio(sum(a.correct for a in with_expect), len(with_expect)),
            "stale_leakage": _ratio(sum(a.stale for a in with_reject), len(with_reject)),
            "duplicates": _ratio(self.duplicate_memories, self.live_memories),
            "cross_user_leakage": _ratio(sum(a.leaked for a in self.asks), len(self.asks)),
            "n": len(self.asks),
            "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        }

    def failures(self) -> list[AskResult]:
        """Return the asks that missed the current fact, leaked a stale one, or leaked across users."""
        return [a for a in self.asks if (a.expect and not a.correct) or a.stale or a.leaked]


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where} must be a list of non-empty strings")
        return ()
    return tuple(value)


def parse_scenarios(lines: Iterable[str]) -> list[Scenario]:
    """Parse JSON lines into scenarios; raise ScenarioError naming every bad line."""
    scenarios: list[Scenario] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, obj in numbered_json_lines(lines, problems):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"].strip():
            problems.append(f"line {n}: expected an object with a non-empty 'id' and 'steps'")
            continue
        sid = obj["id"]
        if sid in seen:
            problems.append(f"line {n}: id {sid!r} already used on line {seen[sid]}")
            continue
        seen[sid] = n
        raw_steps = obj.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            problems.append(f"line {n}: 'steps' must be a non-empty list")
            continue
        steps: list[Step] = []
        before = len(problems)
        for i, st in enumerate(raw_steps, start=1):
            where = f"line {n} step {i}"
            if not isinstance(st, dict):
                problems.append(f"{where}: expected an object")
                continue
            unknown = set(st) - STEP_KEYS
            if unknown:
                problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            user, thread = st.get("user"), st.get("thread")
            if not isinstance(user, str) or not user.strip() or not isinstance(thread, str) or not thread.strip():
                problems.append(f"{where}: 'user' and 'thread' must be non-empty strings")
                continue
            say, ask = st.get("say"), st.get("ask")
            if (say is None) == (ask is None) or not isinstance(say or ask, str) or not str(say or ask).strip():
                problems.append(f"{where}: exactly one of 'say' or 'ask' must be a non-empty string")
                continue
            project = st.get("project")
            if project is not None and (not isinstance(project, str) or not re.fullmatch(r"[a-z0-9-]+", project)):
                problems.append(f"{where}: 'project' must be a project slug")
                continue
            if say is not None and ("expect" in st or "reject" in st):
                problems.append(f"{where}: 'expect' and 'reject' belong to 'ask' steps")
                continue
            steps.append(
                Step(
                    user=user,
                    thread=thread,
                    say=say,
                    ask=ask,
                    expect=_strings(st.get("expect"), f"{where}: 'expect'", problems),
                    reject=_strings(st.get("reject"), f"{where}: 'reject'", problems),
                    project=project,
                )
            )
        if len(problems) == before:
            scenarios.append(Scenario(sid, n, tuple(steps)))
    if problems:
        raise ScenarioError("\n".join(problems))
    if not scenarios:
        raise ScenarioError("no scenarios in the file")
    return scenarios


def _user_id(prefix: str, scenario: Scenario, user: str) -> str:
    return f"{prefix}{scenario.id}:{user}"


async def run_memory_eval(
    store: MemoryStore, scenarios: Sequence[Scenario], *, user_prefix: str = "eval:"
) -> MemoryEvalReport:
    """Run scenarios through the store's write and read paths and score what was recalled."""
    report = MemoryEvalReport(scenarios=len(scenarios))
    for scenario in scenarios:
        users: set[str] = set()
        for i, step in enumerate(scenario.steps):
            uid = _user_id(user_prefix, scenario, step.user)
            users.add(uid)
            ref = TurnRef(user_id=uid, thread_id=f"{scenario.id}:{step.thread}", message_id=f"{scenario.id}:{i}")
            if step.say is not None:
                await store.observe(ref, step.say)
                continue
            assert step.ask is not None
            started = time.perf_counter()
            refs = await store.recall(uid, step.ask, project=step.project)
            latency = (time.perf_counter() - started) * 1000
            texts = [r.text.casefold() for r in refs]
            expect = [e.casefold() for e in step.expect]
            found = not expect or any(all(e in t for e in expect) for t in texts)
            stale = any(r.casefold() in t for r in step.reject for t in texts)
            owners = await store.owners([r.id for r in refs])
            leaked = any(owner != uid for owner in owners.values())
            report.asks.append(
                AskResult(
                    scenario=scenario.id,
                    user=step.user,
                    ask=step.ask,
                    expect=step.expect,
                    reject=step.reject,
                    correct=found and not stale,
                    stale=stale,
                    leaked=leaked,
                    latency_ms=round(latency, 2),
                    recalled=tuple(r.text for r in refs),
                )
            )
            await store.observe(ref, step.ask)
        await store.drain()
        for uid in sorted(users):
            dupes, live = await store.duplicate_stats(uid)
            report.duplicate_memories += dupes
            report.live_memories += live
    return report
