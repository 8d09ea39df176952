"""Routing evaluation: parse a JSONL set, score decisions, summarise the errors that matter."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from state.routing import CLARIFY, RouteDecision


@dataclass(frozen=True)
class RoutingCase:
    """One evaluation line."""

    line: int
    text: str
    expected: str


def numbered_json_lines(lines: Iterable[str], problems: list[str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed value) for each non-blank line; record a problem for each invalid one."""
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg}, column {exc.colno})")


def parse_routing_cases(lines: Iterable[str], known: Sequence[str]) -> tuple[list[RoutingCase], list[str]]:
    """Parse JSONL lines; return the valid cases and one message per bad line (with its number)."""
    cases: list[RoutingCase] = []
    problems: list[str] = []
    allowed = {*known, CLARIFY}
    for n, obj in numbered_json_lines(lines, problems):
        if not isinstance(obj, dict):
            problems.append(f"line {n}: expected an object with 'text' and 'expected'")
            continue
        text, expected = obj.get("text"), obj.get("expected")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"line {n}: 'text' must be a non-empty string")
            continue
        if not isinstance(expected, str) or expected not in allowed:
            problems.append(f"line {n}: 'expected' must be an agent id of the roster or 'clarify', got {expected!r}")
            continue
        cases.append(RoutingCase(n, text, expected))
    return cases, problems


def routing_report(cases: Sequence[RoutingCase], decisions: Sequence[RouteDecision]) -> dict[str, object]:
    """Compute accuracy, clarify precision/recall, confident-wrong rate, per-domain accuracy, confusions, latency."""
    agent_cases = [(c, d) for c, d in zip(cases, decisions, strict=True) if c.expected != CLARIFY]
    clarify_cases = [(c, d) for c, d in zip(cases, decisions, strict=True) if c.expected == CLARIFY]
    correct = sum(d.chosen == c.expected for c, d in agent_cases)
    confident_wrong = sum(d.chosen not in (c.expected, CLARIFY) for c, d in agent_cases)
    asked = [d for d in decisions if d.chosen == CLARIFY]
    asked_right = sum(d.chosen == CLARIFY for _, d in clarify_cases)
    per_domain: dict[str, dict[str, float]] = {}
    for domain in sorted({c.expected.split(".")[0] for c, _ in agent_cases}):
        rows = [(c, d) for c, d in agent_cases if c.expected.split(".")[0] == domain]
        per_domain[domain] = {
            "n": len(rows),
            "accuracy": round(sum(d.chosen == c.expected for c, d in rows) / len(rows), 4),
        }
    confusions = Counter(
        (c.expected, d.chosen) for c, d in zip(cases, decisions, strict=True) if d.chosen != c.expected
    )
    latencies = np.asarray([d.latency_ms for d in decisions]) if decisions else np.zeros(1)
    return {
        "n": len(cases),
        "accuracy": round(correct / len(agent_cases), 4) if agent_cases else 0.0,
        "clarify_precision": round(asked_right / len(asked), 4) if asked else 0.0,
        "clarify_recall": round(asked_right / len(clarify_cases), 4) if clarify_cases else 0.0,
        "confident_wrong": round(confident_wrong / len(agent_cases), 4) if agent_cases else 0.0,
        "per_domain": per_domain,
        "confusions": [{"expected": e, "got": g, "count": n} for (e, g), n in confusions.most_common(10)],
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
    }
