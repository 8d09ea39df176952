"""What a specialist sees of the user's memories and of its tools, as a small model needs it."""

from __future__ import annotations

import pytest

from graphs.registry import load_registry
from nodes.agents import system_prompt_for, tool_input
from nodes.prompts import said_to_user
from nodes.tools import heard, wrote_memory
from state.memory import MemoryRef, Remembered, WriteOutcome


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("My accountant is Priya Shah", "Your accountant is Priya Shah"),
        ("I am colour-blind, so no red/green charts", "You are colour-blind, so no red/green charts"),
        ("I was born in Leeds and my wife is called Ana", "You were born in Leeds and your wife is called Ana"),
        ("We use Gandi for our domains", "You use Gandi for your domains"),
        ("I've moved from Sheffield to York", "You've moved from Sheffield to York"),
        ("Yesterday I moved the demo to Friday", "Yesterday you moved the demo to Friday"),
        ("the US office sends me invoices", "the US office sends you invoices"),  # US is a country
        ("Phase I is done", "Phase I is done"),  # a numeral
        ("Priya Shah prefers email", "Priya Shah prefers email"),  # nothing to turn
        (
            "My mum\u2019s birthday is 3 May; I\u2019ll send flowers",
            "Your mum\u2019s birthday is 3 May; you\u2019ll send flowers",
        ),
    ],
)
def test_memories_are_said_to_the_user(stored: str, shown: str) -> None:
    assert said_to_user(stored) == shown


def test_a_specialist_sees_its_memories_said_to_the_user() -> None:
    card = load_registry().get("chat.memory")
    recalled = [
        MemoryRef(id="1", subject="user/accountant", text="My accountant is Priya Shah", tier="core", score=0.8)
    ]
    prompt = system_prompt_for(card, recalled)
    assert "- Your accountant is Priya Shah (user/accountant)" in prompt
    assert "My accountant" not in prompt


HARTLEY = "The Hartley & Co support contract renews every March."
DANIEL = "My accountant is Daniel Okafor."


@pytest.mark.parametrize(
    ("outcomes", "first_line"),
    [
        (
            [WriteOutcome("stored", f"stored in archive as client:hartley/renewal: {HARTLEY}", HARTLEY)],
            f"Noted: {HARTLEY}",
        ),
        (
            [
                WriteOutcome(
                    "stored",
                    f"stored in core as user/accountant: {DANIEL} (replaces: My accountant is Priya.)",
                    DANIEL,
                    ("My accountant is Priya.",),
                )
            ],
            "Noted: Your accountant is Daniel Okafor. That replaces: Your accountant is Priya.",
        ),
        (
            # A fact with ": " and "(replaces: " of its own is said whole: nothing is parsed out of the record.
            [
                WriteOutcome(
                    "stored",
                    "stored in archive as general/note/x: Note: (replaces: nothing)",
                    "Note: (replaces: nothing)",
                )
            ],
            "Noted: Note: (replaces: nothing)",
        ),
        (
            [WriteOutcome("known", f"already known (exact duplicate), merged into 1a2b3c4d: {DANIEL}", DANIEL)],
            "Already noted: Your accountant is Daniel Okafor.",
        ),
        ([WriteOutcome("refused", "not stored: that looks like a password")], "not stored: that looks like a password"),
        (
            [
                WriteOutcome("stored", "stored in core as a: A.", "A."),
                WriteOutcome("stored", "stored in core as b: B.", "B."),
            ],
            "stored in core as a: A.; stored in core as b: B.",
        ),
    ],
)
def test_a_remembered_fact_leads_the_tool_output_and_the_record_follows(
    outcomes: list[WriteOutcome], first_line: str
) -> None:
    remembered = Remembered(tuple(outcomes))
    lines = heard(remembered).splitlines()
    assert lines[0] == first_line
    assert lines[1:] == ([f"(record: {remembered})"] if str(remembered) != first_line else [])


@pytest.mark.parametrize(
    ("tool", "given", "meant"),
    [
        (
            "erp_sql",
            "erp_sql('SELECT count(*) FROM orders_order WHERE status = 'open'') AS open_orders",
            "SELECT count(*) FROM orders_order WHERE status = 'open'",
        ),
        ("memory_search", 'memory_search("accountant")', "accountant"),
        ("erp_sql", "SELECT 1", "SELECT 1"),
        ("memory_search", "erp_sql('x')", "erp_sql('x')"),  # another tool's name is the input as written
    ],
)
def test_a_tool_input_copied_in_the_shape_of_the_tools_used_is_unwrapped(tool: str, given: str, meant: str) -> None:
    assert tool_input(tool, given) == meant


@pytest.mark.parametrize(
    ("outcomes", "wrote"),
    [
        (
            (
                WriteOutcome(
                    "stored", "stored in archive as van/location: The van is in Leeds.", "The van is in Leeds."
                ),
            ),
            True,
        ),
        (
            (WriteOutcome("known", "already known (exact duplicate): The van is in Leeds.", "The van is in Leeds."),),
            True,
        ),
        ((WriteOutcome("refused", "not stored: too vague to keep"),), False),
        ((WriteOutcome("discarded", "discarded (small talk): hello", "hello"),), False),
        (
            (
                WriteOutcome("stored", "stored in core as user/editor: My editor is Helix.", "My editor is Helix."),
                WriteOutcome("refused", "not stored: looks like a secret"),
            ),
            True,
        ),
        ((), False),
    ],
)
def test_a_memory_tool_has_written_only_when_its_answer_says_so(
    outcomes: tuple[WriteOutcome, ...], wrote: bool
) -> None:
    # What memory_remember answers (heard) is what unmade_writes reads to tell a true "Noted:" from a made-up one.
    assert wrote_memory("memory_remember", heard(Remembered(outcomes))) is wrote
    assert not wrote_memory("memory_search", heard(Remembered(outcomes)))
    assert wrote_memory("memory_forget", "forgotten: I drink oat milk.")
    assert wrote_memory(
        "memory_forget", "forgotten (recoverable with `nova memory restore 3f2a1b7c`): I drink oat milk."
    )
    assert not wrote_memory("memory_forget", "nothing forgotten: say what to forget")
