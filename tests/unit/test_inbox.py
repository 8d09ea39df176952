"""Review decisions read from the owner's chat message: only a clear command on a gate shown here decides.

The refused cases include every message two reviews of this module found that a looser reading approved,
rejected or ignored wrongly.
"""

from __future__ import annotations

import pytest

from nodes.inbox import (
    PendingReview,
    ReviewDecision,
    decided,
    gate_line,
    named_review,
    read_decision,
    review_to_show,
    short_ref,
)

FIX = PendingReview("dc2c4715-0b84-4220-8c16-0e2cfd931ce8", "issue_fix issue=102", "a1b2c3d4e5f6a7b8")
OTHER = PendingReview("e2e2eb9e-aaed-4939-987b-a4e9bdb4e65a", "issue_fix issue=103", "9988776655443322")
UPDATE = PendingReview(
    "7a1f09be-5d4c-4e0b-9a57-3c2b1e8f6d10", "client_update client=kestrel notes=recent progress", "0f0e0d0c0b0a0908"
)
PENDING = [FIX, UPDATE]
PAUSED = f"Pipeline issue_fix (thread {FIX.thread_id}):\n- draft_fix: ...\nPaused for your review {gate_line(FIX)}: ..."
LISTED = "\n".join(f"- {r.thread_id} [pipeline] apply_patch: {r.title} {gate_line(r)}" for r in PENDING)
BOTH = f"{PAUSED}\n{LISTED}"  # the conversation after a pause and a list: both gates shown


@pytest.mark.parametrize(
    ("message", "last_reply", "review", "decision"),
    [
        ("approve it", PAUSED, FIX, {"type": "accept"}),  # the one gate Nova's last reply showed
        ("OK, approve it.", PAUSED, FIX, {"type": "accept"}),
        ("lgtm", PAUSED, FIX, {"type": "accept"}),
        ("@orchestration.reviews approve it", PAUSED, FIX, {"type": "accept"}),  # sent to the agent by name
        ("approve dc2c4715", LISTED, FIX, {"type": "accept"}),
        ("approve a1b2c3d4", LISTED, FIX, {"type": "accept"}),  # by the gate's id, as the pause prints it
        ("sign off on 7a1f09be, thanks", LISTED, UPDATE, {"type": "accept"}),
        ("please approve #dc2c4715!", LISTED, FIX, {"type": "accept"}),
        ("ignore 7a1f09be", LISTED, UPDATE, {"type": "ignore"}),
        (
            "reject it because it should use for_branch; we don't filter by tenant alone",
            PAUSED,
            FIX,
            {"type": "respond", "args": "it should use for_branch; we don't filter by tenant alone"},
        ),
        ("reject 7a1f09be: too much jargon", LISTED, UPDATE, {"type": "respond", "args": "too much jargon"}),
        ("reject it since: it leaks", PAUSED, FIX, {"type": "respond", "args": "it leaks"}),
        ("reject it, because: too long", PAUSED, FIX, {"type": "respond", "args": "too long"}),
        ("decline it for the following reason: too long", PAUSED, FIX, {"type": "respond", "args": "too long"}),
        ("reject it because it duplicates 103", PAUSED, FIX, {"type": "respond", "args": "it duplicates 103"}),
    ],
)
def test_a_clear_command_decides(
    message: str, last_reply: str, review: PendingReview, decision: dict[str, object]
) -> None:
    assert read_decision(message, PENDING, BOTH, last_reply) == ReviewDecision(review, decision)


@pytest.mark.parametrize(
    ("message", "last_reply", "refusal"),
    [
        # not a command: the verb does not start the message, or is a description
        ("The draft approved by Sam is wrong, reject it because it leaks", PAUSED, "start the message with"),
        ("the patch ignores tenant_id, reject it because it leaks", PAUSED, "start the message with"),
        ("I ignored the lint warnings; approve it", PAUSED, "start the message with"),
        ("the redraft looks good, approve it", PAUSED, "start the message with"),
        ("should I approve it", PAUSED, "start the message with"),
        ("how do I approve it", PAUSED, "start the message with"),
        ("don't approve it yet", PAUSED, "start the message with"),
        ("no, approve it", PAUSED, "start the message with"),
        ("@sam approve it", PAUSED, "start the message with"),  # someone else addressed
        ("sign off for now", PAUSED, "start the message with"),
        ("send it back to the client please, thanks a lot", PAUSED, ""),  # not a rejection at all
        # a command with more than a review's name around it
        ("approve it? not yet", PAUSED, "write just the decision"),
        ("approve it once the tests pass", PAUSED, "'once' does not name a review"),
        ("approve it only if CI is green", PAUSED, "'only' does not name a review"),
        ("approve it tomorrow", PAUSED, "'tomorrow' does not name a review"),
        ("approve it for now", PAUSED, "'for' does not name a review"),
        ("approve it. actually, no, don't", PAUSED, "write just the decision"),
        ("approve it - no wait", PAUSED, "'no' does not name a review"),
        ("ok approve it, unless Sam objects", PAUSED, "'unless' does not name a review"),
        ("approve it, the recent changes are fine", LISTED, "'recent' does not name a review"),
        ("approve review 12, reject 13", LISTED, "'review' does not name a review"),
        ("approve the client update", PAUSED, "'client' does not name a review"),  # names no review it can check
        ("approve the draft", PAUSED, "'draft' does not name a review"),
        ("approve the fix for 102", BOTH, "'fix' does not name a review"),
        ("approve it 👎", PAUSED, "write just the decision"),
        ("approve it :(", PAUSED, "write just the decision"),
        ("approve it…", PAUSED, "write just the decision"),
        ("approve the facade fix", LISTED, "'facade' does not name a review"),  # hex-looking, not an id
        # which review
        ("approve abc123", LISTED, "abc123 matches no review waiting"),
        ("approve it", LISTED, "say which review"),  # the last reply showed two gates
        ("approve it", "Noted: your accountant is Priya Shah.", "say which review"),  # it showed none
        ("ignore it", PAUSED, "say which review"),  # ignoring drops the proposal: only by its id
        ("ignore that", PAUSED, "say which review"),
        # a rejection's reason that is missing, asks, takes it back, or holds another decision
        ("reject it", PAUSED, "needs its reason"),
        ("reject it: no", PAUSED, "needs its reason"),
        ("reject it - no wait", PAUSED, "takes the rejection back"),
        ("reject it, just kidding", PAUSED, "takes the rejection back"),
        ("reject it. Actually, don't.", PAUSED, "takes the rejection back"),
        ("reject it: wait no, approve it", PAUSED, "takes the rejection back"),
        ("reject it, or should I?", PAUSED, "takes the rejection back"),
        ("reject it because it leaks? or is that fine?", PAUSED, "takes the rejection back"),
        ("reject 7a1f09be: it duplicates 102\n\nand approve dc2c4715", LISTED, "takes the rejection back"),
        # found by the second adversarial pass: take-backs, conditions, other decisions and ids in the reason
        ("reject it, sorry, meant 7a1f09be", PAUSED, "takes the rejection back"),
        ("reject it - no, ship it", PAUSED, "takes the rejection back"),
        ("reject it, or not", PAUSED, "takes the rejection back"),
        ("reject it, unless Sam already merged it", PAUSED, "takes the rejection back"),
        ("reject it, if the tests fail", PAUSED, "takes the rejection back"),
        ("reject it, nvm it's fine", PAUSED, "takes the rejection back"),
        ("reject 7a1f09be: too much jargon. Sign off on dc2c4715", LISTED, "takes the rejection back"),
        ("reject 7a1f09be: too much jargon; merging dc2c4715", LISTED, "takes the rejection back"),
        ("reject 7a1f09be: too much jargon, +1 on the other", LISTED, "takes the rejection back"),
        ("reject dc2c4715, 7a1f09be because both leak tenant data", LISTED, "the reason names a review"),
        ("reject it, thank you", PAUSED, "needs its reason"),
        ("reject it: , ,", PAUSED, "needs its reason"),
        ("@sam.jones approve it", PAUSED, "start the message with"),
        ("approve dc2c4715 7a1f09eb", LISTED, "7a1f09eb matches no review waiting"),  # every id must resolve
        ("approve dc2c4715 2025-07-01", LISTED, "2025-07-01 matches no review waiting"),
        ("approve dc2c4715 7a1f09be", LISTED, "the ids name more than one review"),
        ("reject the fix for 102, wrong approach", PAUSED, "'fix' does not name a review"),
    ],
)
def test_anything_less_than_a_clear_command_decides_nothing(message: str, last_reply: str, refusal: str) -> None:
    read = read_decision(message, PENDING, BOTH, last_reply)
    assert read.review is None and read.decision is None
    assert refusal in read.refusal


@pytest.mark.parametrize("message", ["what is waiting for my review", "show me the kestrel draft", "reviews"])
def test_a_message_without_a_decision_has_nothing_to_say(message: str) -> None:
    assert read_decision(message, PENDING, BOTH, LISTED) == ReviewDecision()


def test_it_is_only_the_gate_of_the_reply_just_before() -> None:
    """An old pause further up the conversation is not "it" once other talk came between."""
    calendar = "Accepted: the calendar invite for Friday is in your planner."
    read = read_decision("yes, accept it", PENDING, f"{PAUSED}\n{calendar}", calendar)
    assert read.review is None and "say which review" in read.refusal
    assert read_decision("lgtm", PENDING, PAUSED, PAUSED).review == FIX


def test_a_gate_raised_since_it_was_shown_is_shown_before_it_is_decided() -> None:
    """Rejected elsewhere and redrafted, or a turn replayed after an approval: the gate now pending is new."""
    redrafted = PendingReview(FIX.thread_id, FIX.title, "5566778899aabbcc")
    read = read_decision("approve dc2c4715", [redrafted], PAUSED, PAUSED)
    assert read.review is None and f"nova reviews show {FIX.thread_id}" in read.refusal
    assert "55667788" not in read.refusal, "the refusal does not show the new gate as if it had been read"
    assert read_decision("approve it", [redrafted], PAUSED, PAUSED).review is None
    assert read_decision("approve it", [OTHER], PAUSED, PAUSED).review is None, "never the next review in the queue"
    assert "nothing is waiting" in read_decision("approve it", [], PAUSED, PAUSED).refusal


def test_after_a_decision_it_is_not_the_redraft_the_list_shows() -> None:
    redrafted = PendingReview(FIX.thread_id, FIX.title, "5566778899aabbcc")
    report = decided("respond", FIX, {"interrupts": [{"id": redrafted.gate}], "values": {}})
    assert "5566" not in report, "the report does not show the redraft's gate"
    reply = f"{report}\n\n- {FIX.thread_id} [pipeline] apply_patch: {FIX.title} {gate_line(redrafted)}"
    read = read_decision("lgtm", [redrafted], f"{PAUSED}\n{reply}", reply)
    assert read.review is None and "say which review" in read.refusal
    assert read_decision("approve dc2c4715", [redrafted], f"{PAUSED}\n{reply}", reply).review == redrafted
    quoted = f"**{report}**\n- {FIX.title} {gate_line(redrafted)}"  # the report anywhere in a line, not only first
    assert read_decision("lgtm", [redrafted], quoted, quoted).review is None


def test_the_short_ref_the_inbox_suggests_is_read_back_as_that_review() -> None:
    no_digit_head = PendingReview("abcdefab-cdef-4abc-8def-abcdefabcdef", "issue_fix issue=9", "1234abcd99990000")
    assert short_ref(FIX.thread_id) == "dc2c4715" and short_ref(no_digit_head.thread_id) == "abcdefab-cdef-4"
    shown = f"{LISTED}\n{gate_line(no_digit_head)}"
    for review in (FIX, no_digit_head):
        read = read_decision(f"approve {short_ref(review.thread_id)}", [*PENDING, no_digit_head], shown, shown)
        assert read.review == review


@pytest.mark.parametrize(
    ("message", "pending", "last_reply", "shown"),
    [
        ("show me the diff for dc2c4715", [FIX, OTHER], "", FIX),
        ("what does e2e2eb9e change?", [FIX, OTHER], "", OTHER),
        ("open 9988776655", [FIX, OTHER], "", OTHER),  # by its gate's id
        ("let me see the pending proposal", [FIX], "", FIX),  # the only one waiting
        ("let me see the pending proposal", [FIX, OTHER], "", None),  # which one?
        ("show it", [FIX, OTHER], f"... {gate_line(OTHER)}", OTHER),  # the one the reply before showed alone
        ("approve dc2c4715", [FIX], "", None),  # a decision is no request to see
        ("what is waiting for my review", [FIX], "", None),  # asks for the list, not for one
        ("show me the diff for 12345678", [FIX, OTHER], "", None),  # names no waiting review
        ("show me the diff for issue 102 from 2026-12-06", [FIX], "", FIX),  # a date is no review's id
        ("don't show me the diff, just approve dc2c4715", [FIX], "", None),
        ("no need to show me dc2c4715", [FIX], "", None),
        ("I read the diff already, approve it", [FIX], "", None),
    ],
)
def test_the_review_a_message_asks_to_see(
    message: str, pending: list[PendingReview], last_reply: str, shown: PendingReview | None
) -> None:
    assert review_to_show(message, pending, last_reply) == shown


@pytest.mark.parametrize(
    ("message", "about"),
    [
        ("show me the diff for dc2c4715", True),
        ("what does dc2c4715 change?", True),
        ("reject dc2c4715 because it skips the branch", True),
        ("draft a client update about the fix in dc2c4715", False),
        ("open a new issue about the bug in dc2c4715", False),
    ],
)
def test_a_message_naming_a_review_is_for_the_inbox_when_it_asks_to_see_or_decides(message: str, about: bool) -> None:
    from nodes.inbox import about_a_review

    assert about_a_review(message) is about


def test_a_message_names_a_review_only_when_its_ids_name_one() -> None:
    assert named_review("diff for dc2c4715 please", [FIX, OTHER]) == FIX
    assert named_review("compare dc2c4715 with e2e2eb9e", [FIX, OTHER]) is None
    assert named_review("on 2026-12-06", [FIX, OTHER]) is None


def test_a_pause_said_in_chat_names_the_review_so_it_can_be_shown_and_decided_here() -> None:
    from nodes.pipeline import describe_outcome

    outcome = {"thread_id": FIX.thread_id, "interrupts": [{"id": FIX.gate}], "values": {"steps": []}}
    paused = describe_outcome("issue_fix", outcome, in_chat=True)
    assert f"say 'show {short_ref(FIX.thread_id)}' to read it here" in paused
    assert review_to_show(f"show {short_ref(FIX.thread_id)}", PENDING, paused) == FIX
    assert read_decision("approve it", PENDING, paused, paused) == ReviewDecision(FIX, {"type": "accept"})
    shell = describe_outcome("issue_fix", outcome)
    assert "say 'show" not in shell and f"`nova reviews show {FIX.thread_id}`" in shell
