"""Routing evaluation: bad lines are reported with their numbers and metrics are computed as documented."""

from __future__ import annotations

from nodes.evaluation import parse_routing_cases, routing_report
from state.routing import Candidate, RouteDecision


def decision(chosen: str, ms: float = 1.0) -> RouteDecision:
    return RouteDecision(
        chosen=chosen, reason="r", method="embedding", latency_ms=ms, candidates=(Candidate(id="a.one", score=0.5),)
    )


def test_bad_lines_are_reported_and_skipped() -> None:
    lines = [
        '{"text": "hi", "expected": "a.one"}',
        "not json",
        '{"text": "", "expected": "a.one"}',
        '{"text": "x", "expected": "z.z"}',
        "",
        '["list"]',
        '{"text": "vague", "expected": "clarify"}',
    ]
    cases, problems = parse_routing_cases(lines, ["a.one", "b.two"])
    assert [c.line for c in cases] == [1, 7]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 6"]
    assert "not valid JSON" in problems[0] and "'z.z'" in problems[2]


def test_metrics() -> None:
    lines = [
        '{"text": "1", "expected": "a.one"}',
        '{"text": "2", "expected": "a.one"}',
        '{"text": "3", "expected": "b.two"}',
        '{"text": "4", "expected": "b.two"}',
        '{"text": "5", "expected": "clarify"}',
        '{"text": "6", "expected": "clarify"}',
    ]
    cases, _ = parse_routing_cases(lines, ["a.one", "b.two"])
    got = [
        decision("a.one"),
        decision("clarify"),
        decision("a.one"),
        decision("b.two"),
        decision("clarify"),
        decision("b.two", 9.0),
    ]
    report = routing_report(cases, got)
    assert report["n"] == 6
    assert report["accuracy"] == 0.5
    assert report["confident_wrong"] == 0.25
    assert report["clarify_recall"] == 0.5 and report["clarify_precision"] == 0.5
    assert report["per_domain"] == {"a": {"n": 2, "accuracy": 0.5}, "b": {"n": 2, "accuracy": 0.5}}
    assert {"expected": "b.two", "got": "a.one", "count": 1} in report["confusions"]
    assert report["p95_ms"] > report["p50_ms"] == 1.0
