"""list_agents on the real roster: the agents a request names in full, else every agent in a line by domain."""

from __future__ import annotations

import re

import pytest

from graphs.registry import load_registry
from nodes.tools import roster_text, summary_of

ROSTER = [(card.id, card.description) for card in load_registry()]


def ids(text: str) -> list[str]:
    return [line[2:].split(":", 1)[0] for line in text.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize("query", ["", "none", "all", "list all agents", "Hi Nova, what are your capabilities?"])
def test_a_request_naming_no_agent_gets_every_agent_in_a_phrase_one_line_a_domain(query: str) -> None:
    """One line a domain: the 1.5B model copied the first block of a listing, which had been the chat agents."""
    text = roster_text(ROSTER, query)
    lines = text.splitlines()
    assert lines[0] == "Nova's 34 agents, by domain:"
    assert [line.split(":", 1)[0] for line in lines[1:]] == [
        "- chat",
        "- erp",
        "- language",
        "- orchestration",
        "- pipeline",
    ]
    named = re.findall(r"(?:^|; |: )([a-z]+\.[a-z_]+) \(", text, re.M)
    assert sorted(named) == sorted(i for i, _ in ROSTER)
    assert "erp.tenancy (AIREP's multi-tenant structure and branch-scoped isolation rules)" in text


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("what's the difference between erp.fixes and pipeline.issue_fix", ["erp.fixes", "pipeline.issue_fix"]),
        ("is there an agent for proofreading", ["language.proofread"]),  # a form of the name, before text hits
        ("who does translation?", ["language.translate"]),
        ("language", ["language.blog", "language.draft"]),  # a domain
    ],
)
def test_named_agents_come_in_full(query: str, first: list[str]) -> None:
    text = roster_text(ROSTER, query)
    assert ids(text)[: len(first)] == first
    described = dict(ROSTER)
    assert f"- {first[0]}: {described[first[0]]}" in text


def test_summary_of_keeps_the_first_clause() -> None:
    assert summary_of("Client relationships: who a client is, who the contacts are.") == "Client relationships"
    assert summary_of("Turns notes (e.g. Wayne's) into entries: more.") == "Turns notes (e.g. Wayne's) into entries"
    long = "Writes " + "very " * 40 + "long posts."
    assert summary_of(long).endswith(" …") and len(summary_of(long)) <= 112
