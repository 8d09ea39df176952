"""Measures, fixers, parsers and selection of the improvement loop, called directly."""

from __future__ import annotations

import ast
import tomllib

import pytest

from nodes.improve.analysis import complexity, find_duplicates, measure_functions
from nodes.improve.fixers import FixerError, add_card_example, extract_duplicate
from nodes.improve.ports import RuntimeSignals
from nodes.improve.scan import mypy_errors, pytest_results, runtime_findings
from nodes.improve.select import choose
from state.improve import Finding, Outcome
from tests.unit.test_improve_fixture import CALC, CARD


def test_duplicates_are_found_by_ast_not_by_text() -> None:
    dups = find_duplicates({"pkg/calc.py": CALC})
    assert len(dups) == 1
    dup = dups[0]
    assert dup.statements == 4 and dup.lines == 5
    assert [(s.function, s.start, s.end) for s in dup.sites] == [("invoice_total", 8, 12), ("quote_total", 18, 22)]


def test_extract_duplicate_moves_the_block_into_one_function() -> None:
    dup = find_duplicates({"pkg/calc.py": CALC})[0]
    out = extract_duplicate(CALC, dup)
    tree = ast.parse(out)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert names == ["_invoice_total_shared", "invoice_total", "quote_total"]
    assert out.count("gross = _invoice_total_shared(items, tax)") == 2
    assert out.count("subtotal += item") == 1
    assert "def _invoice_total_shared(items: list[dict[str, float]], tax: float) -> Any:" in out
    assert "from typing import Any" in out
    namespace: dict[str, object] = {}
    exec(compile(out, "calc", "exec"), namespace)  # the extraction keeps behaviour
    items = [{"price": 2.0, "qty": 3.0}]
    assert namespace["invoice_total"](items, 0.5) == "invoice 9.00"  # type: ignore[operator]


def test_extract_duplicate_refuses_blocks_that_return() -> None:
    src = CALC.replace('    print("computed", gross)\n', '    if gross < 0:\n        return "negative"\n')
    dups = find_duplicates({"pkg/calc.py": src})
    assert dups
    with pytest.raises(FixerError, match="return"):
        extract_duplicate(src, dups[0])


def test_complexity_counts_branches_and_boolean_operators() -> None:
    src = "def f(a, b):\n    if a and b:\n        return 1\n    for x in a:\n"
    src += "        if x or b:\n            pass\n    return 0\n"
    fn = ast.parse(src).body[0]
    assert complexity(fn) == 6
    assert measure_functions("m.py", src)[0].complexity == 6


def test_a_misrouted_request_becomes_a_card_example() -> None:
    out = add_card_example(CARD, 'has "Kestrel" paid the March invoice')
    data = tomllib.loads(out)
    assert data["examples"][-1] == 'has "Kestrel" paid the March invoice'
    assert data["id"] == "chat.clients" and len(data["examples"]) == 3
    with pytest.raises(FixerError, match="already"):
        add_card_example(out, "who are Kestrel Logistics")


def test_single_line_examples_arrays_are_extended() -> None:
    out = add_card_example('id = "a.b"\nexamples = ["one", "two"]\n', "three")
    assert tomllib.loads(out)["examples"] == ["one", "two", "three"]


def test_pytest_and_mypy_output_are_parsed() -> None:
    failed, slow = pytest_results(
        "FAILED tests/test_calc.py::test_x - AssertionError: boom\n"
        "ERROR tests/test_y.py::test_z\n"
        "3.20s call     tests/test_calc.py::test_slow\n0.70s setup    tests/test_calc.py::test_slow\n"
    )
    assert failed == {"tests/test_calc.py::test_x": "AssertionError: boom", "tests/test_y.py::test_z": ""}
    assert slow == {"tests/test_calc.py::test_slow": 3.2}
    errors = mypy_errors('nodes/a.py:12: error: Returning Any from function declared to return "str"  [no-any-return]')
    assert errors == [
        {"path": "nodes/a.py", "line": 12, "message": 'Returning Any from function declared to return "str"',
         "code": "no-any-return"}
    ]  # fmt: skip


def _finding(fid: str, fingerprint: str, score: float = 0.5) -> Finding:
    return Finding(id=fid, kind="duplicate", path="pkg/a.py", message="m", score=score, fingerprint=fingerprint)


def test_selection_skips_rejections_until_the_evidence_changes() -> None:
    rejected = Outcome(
        proposal_id="p1", target="/r", finding_ids=["dup:a"], fingerprints=["v1"], decision="rejected",
        comment="the helper name is unclear",
    )  # fmt: skip
    selected, skipped = choose(
        [_finding("dup:a", "v1"), _finding("dup:b", "v1", 0.4)], [rejected], limit=5, can_draft=False
    )
    assert selected == ["dup:b"]
    assert skipped == ["dup:a: rejected before, evidence unchanged (the helper name is unclear)"]
    selected, skipped = choose([_finding("dup:a", "v2")], [rejected], limit=5, can_draft=False)
    assert selected == ["dup:a"] and skipped == []


def test_selection_ranks_by_score_and_keeps_model_only_kinds_for_a_model() -> None:
    complex_fn = Finding(id="complexity:a", kind="complexity", path="a.py", message="m", score=0.9)
    findings = [_finding("dup:low", "x", 0.2), complex_fn, _finding("dup:high", "x", 0.8)]
    assert choose(findings, [], limit=5, can_draft=False)[0] == ["dup:high", "dup:low"]
    assert choose(findings, [], limit=2, can_draft=True)[0] == ["complexity:a", "dup:high"]


def test_runtime_signals_become_findings() -> None:
    signals = RuntimeSignals(
        misroutes=[{"text": "who is Kestrel", "correct": "chat.clients", "wrong": "chat.general", "count": 3}],
        node_errors=[{"node": "route_request", "kind": "TimeoutError", "count": 4, "example": "slow"}],
        slow_turns=[{"agent": "erp.query", "count": 9, "p95_ms": 8000.0, "max_ms": 9000.0}],
        memory_conflicts=[{"user_id": "owner", "subject": "client:x/rate", "values": ["500", "550"], "texts": []}],
    )
    found = {f.kind: f for f in runtime_findings(signals)}
    assert set(found) == {"misroute", "node_error", "slow_turn", "memory_conflict"}
    assert found["misroute"].path == "graphs/agents/chat/clients.toml"
    assert found["misroute"].measure == 3 and found["misroute"].score > found["memory_conflict"].score
