"""Review decisions read from the owner's chat message: only a clear command on a gate shown here decides."""

from __future__ import annotations

import pytest

from nodes.inbox import PendingReview, ReviewDecision, gate_line, read_decision, short_ref

FIX = PendingReview("dc2c4715-0b84-4220-8c16-0e2cfd931ce8", "issue_fix issue=102", "a1b2c3d4e5f6a7b8")
OTHER = PendingReview("e2e2eb9e-aaed-4939-987b-a4e9bdb4e65a", "issue_fix issue=103", "99887766554433")
UPDATE = PendingReview(
    "7a1f09be-5d4c-4e0b-9a57-3c2b1e8f6d10", "client_update client=kestrel notes=recent progress", "0f0e0d0c0b0a0908"
)
PENDING = [FIX, UPDATE]
PAUSED = f"Pipeline issue_fix (thread {FIX.thread_id}): ... Paused for your review {gate_line(FIX)}: ..."
LISTED = "\n".join(f"- {r.thread_id} [pipeline] apply_patch: {r.title} {gate_line(r)}" for r in PENDING)


@pytest.mark.parametrize(
    ("message", "shown", "review", "decision"),
    [
        ("approve it", PAUSED, FIX, {"type": "accept"}),  # the one gate this conversation showed
        ("OK, approve it.", PAUSED, FIX, {"type": "accept"}),
        ("@orchestration.reviews approve it", PAUSED, FIX, {"type": "accept"}),  # sent to the agent by name
        ("lgtm", PAUSED, FIX, {"type": "accept"}),
        ("approve dc2c4715", LISTED, FIX, {"type": "accept"}),
        ("approve the fix for issue 102, thanks", LISTED, FIX, {"type": "accept"}),
        ("sign off on the kestrel update", LISTED, UPDATE, {"type": "accept"}),
        ("ignore #102", LISTED, FIX, {"type": "ignore"}),
        (
            "reject it because it should use for_branch; also drop the raw join",
            PAUSED,
            FIX,
            {"type": "respond", "args": "it should use for_branch; also drop the raw join"},
        ),
        ("reject 7a1f09be: too much jargon", LISTED, UPDATE, {"type": "respond", "args": "too much jargon"}),
        ("reject the fix for 102, wrong approach", LISTED, FIX, {"type": "respond", "args": "wrong approach"}),
        (
            "reject it because it duplicates 103",  # the reason never picks the review
            PAUSED,
            FIX,
            {"type": "respond", "args": "it duplicates 103"},
        ),
    ],
)
def test_a_clear_command_decides(message: str, shown: str, review: PendingReview, decision: dict[str, object]) -> None:
    assert read_decision(message, PENDING, shown) == ReviewDecision(review, decision)


@pytest.mark.parametrize(
    ("message", "shown", "refusal"),
    [
        # not a command: the verb is not how the message starts, or is a description
        ("The draft approved by Sam is wrong, reject it because it leaks", PAUSED, "a decision starts with it"),
        ("the patch ignores tenant_id, reject it because it leaks", PAUSED, "a decision starts with it"),
        ("I ignored the lint warnings; approve it", PAUSED, "a decision starts with it"),
        ("the redraft looks good, approve it", PAUSED, "a decision starts with it"),
        ("should I approve it", PAUSED, "a decision starts with it"),
        ("how do I approve it", PAUSED, "a decision starts with it"),
        ("don't approve it yet", PAUSED, "a decision starts with it"),
        ("the Kestrel draft is fine, approve and finalise", LISTED, "a decision starts with it"),
        # a command with more than a review's name around it
        ("approve it? not yet", PAUSED, "asks rather than decides"),
        ("approve it once the tests pass", PAUSED, "'once' is not part of naming a review"),
        ("approve it only if CI is green", PAUSED, "'only' is not part of naming a review"),
        ("approve it tomorrow", PAUSED, "'tomorrow' is not part of naming a review"),
        ("approve it. actually, no, don't", PAUSED, "is not part of naming a review"),
        ("approve it - no wait", PAUSED, "is not part of naming a review"),
        ("ok approve it, unless Sam objects", PAUSED, "'unless' is not part of naming a review"),
        ("approve it, the recent changes are fine", LISTED, "is not part of naming a review"),
        ("approve review 12, reject 13", LISTED, "'reject' is not part of naming a review"),
        # which review
        ("approve the fix for 103", PAUSED, "no review matching 103 is waiting"),  # named, not pending: no fallback
        ("approve abc123", LISTED, "no review matching abc123 is waiting"),
        ("approve it", "", "say which review"),  # no gate shown in this conversation: "it" is nobody
        ("approve it", LISTED, "more than one review matches"),
        ("approve dc2c4715", "", "not shown in this conversation yet (gate a1b2c3d4)"),
        ("approve the facade fix", LISTED, "'facade' is not part of naming a review"),  # hex-looking, not an id
        # a rejection without its reason
        ("reject it", PAUSED, "needs its reason"),
        ("reject it: no", PAUSED, "needs its reason"),
    ],
)
def test_anything_less_than_a_clear_command_on_a_shown_gate_decides_nothing(
    message: str, shown: str, refusal: str
) -> None:
    read = read_decision(message, PENDING, shown)
    assert read.review is None and read.decision is None
    assert refusal in read.refusal


@pytest.mark.parametrize("message", ["what is waiting for my review", "show me the kestrel draft", "reviews"])
def test_a_message_without_a_decision_has_nothing_to_say(message: str) -> None:
    assert read_decision(message, PENDING, LISTED) == ReviewDecision()


def test_a_gate_raised_since_it_was_shown_is_shown_before_it_is_decided() -> None:
    """Rejected elsewhere and redrafted, or a turn replayed after an approval: the gate now pending is new."""
    redrafted = PendingReview(FIX.thread_id, FIX.title, "5566778899aabbcc")
    read = read_decision("approve dc2c4715", [redrafted], PAUSED)
    assert read.review is None and "(gate 55667788)" in read.refusal
    assert read_decision("approve it", [redrafted], PAUSED).review is None
    assert read_decision("approve it", [OTHER], PAUSED).review is None, "never the next review in the queue"
    assert "nothing is waiting" in read_decision("approve it", [], PAUSED).refusal


def test_the_short_ref_the_inbox_suggests_is_read_back_as_that_review() -> None:
    no_digit_head = PendingReview("abcdefab-cdef-4abc-8def-abcdefabcdef", "issue_fix issue=9", "1234abcd9999")
    assert short_ref(FIX.thread_id) == "dc2c4715" and short_ref(no_digit_head.thread_id) == "abcdefab-cdef-4"
    for review in (FIX, no_digit_head):
        shown = f"{LISTED}\n{gate_line(no_digit_head)}"
        read = read_decision(f"approve {short_ref(review.thread_id)}", [*PENDING, no_digit_head], shown)
        assert read.review == review
