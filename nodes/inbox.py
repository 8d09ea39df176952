"""Review gates from chat: the decision the owner's own message states, and what it did.

Approving in chat applies work (a patch written, a draft made final), so the message is read by rule and never
by the model, and when in doubt nothing is decided. A decision is a command: it starts with the verb (approve,
accept, lgtm, sign off; reject, decline; ignore, dismiss), names the review with nothing else around it, and a
rejection gives its reason after "because", a colon, a comma or a dash. And only a gate this conversation has
shown can be decided: `list_reviews` and a pipeline's pause print each gate's short id, so a gate raised since
(a redraft made elsewhere, or the next review in the queue when a turn is replayed) is shown first, not decided.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Decision = Mapping[str, object]

LEAD = r"^\s*(?:@[\w.]+[\s,:]+)?(?:(?:ok(?:ay)?|yes|yep|sure|fine|good|great|right|then|so|please)\b[\s,.!]*)*"
COMMAND_RE = re.compile(
    LEAD + r"(?:(?P<accept>approve|accept|lgtm|sign off(?: on)?)|(?P<respond>reject|decline|send (?:it|this|that) back)"
    r"|(?P<ignore>ignore|dismiss))\b(?P<rest>.*)$",
    re.I | re.S,
)
ANY_VERB_RE = re.compile(r"\b(approve|accept|lgtm|reject|decline|ignore|dismiss|sign off)\b", re.I)
REASON_RE = re.compile(
    r"\s*(?:\bbecause\b|\bsince\b|\bwith (?:a |the )?(?:reason|note|comment)\b:?|:|;|,|—|–|\s-\s|\.\s)\s*", re.I
)
TARGET_WORDS = frozenset(
    "it this that one the a fix proposal review draft update client refactor patch diff change for on of issue bug"
    " ticket please now to pipeline thanks thank you".split()
)
REF_RE = re.compile(r"(?=[0-9a-f-]*\d)[0-9a-f][0-9a-f-]{5,}", re.I)  # an id prefix has a digit: not "facade"
NAME_KEYS = frozenset({"client", "project", "name", "repo"})
EXAMPLE = "'approve dc2c4715' or 'reject dc2c4715 because ...'"
PAST = {"accept": "Approved", "respond": "Rejected with your comment", "ignore": "Ignored"}


@dataclass(frozen=True)
class PendingReview:
    """A thread waiting at a gate: its id, title (`issue_fix issue=102`) and the pending interrupt's id."""

    thread_id: str
    title: str
    gate: str

    @property
    def gate_ref(self) -> str:
        """The gate's short id, as Nova prints it and a decision must find in the conversation."""
        return self.gate[:8]


@dataclass(frozen=True)
class ReviewDecision:
    """What the owner's message decides (a review, its gate and an agent-inbox decision), or why nothing is."""

    review: PendingReview | None = None
    decision: Decision | None = None
    refusal: str = ""


def short_ref(thread_id: str) -> str:
    """Return the first 8 characters of an id, or more until one is a digit (the sign REF_RE reads ids by)."""
    cut = 8
    while cut < len(thread_id) and not any(c.isdigit() for c in thread_id[:cut]):
        cut += 1
    return thread_id[:cut]


def gate_line(review: PendingReview) -> str:
    """Return the words that show a gate in chat; a later decision on it needs them in the conversation."""
    return f"(gate {review.gate_ref})"


def _names(title: str) -> tuple[set[str], set[str]]:
    """Return a title's numbers (`issue=102`) and names (`client=kestrel`), case-folded."""
    pairs = re.findall(r"\b(\w+)=([^\s=]+)", title)
    numbers = {v for _, v in pairs if v.isdigit()}
    names = {v.casefold() for k, v in pairs if k in NAME_KEYS and len(v) >= 3 and not v.isdigit()}
    return numbers, names


def read_decision(message: str, pending: Sequence[PendingReview], shown: str = "") -> ReviewDecision:
    """Read the decision on one paused review that the owner's message states, by rule, or say why there is none.

    `shown` is the conversation before the message: the review's current gate must appear in it (its short id),
    so only a gate Nova has shown here is decided. A message that is not a decision at all gives an empty
    ReviewDecision (nothing to say); one that looks like a decision but is not clearly one gives a refusal.
    """
    text = message.strip()
    command = COMMAND_RE.match(text)
    if command is None:
        if ANY_VERB_RE.search(text):
            return ReviewDecision(refusal=f"a decision starts with it, as in {EXAMPLE}")
        return ReviewDecision()
    kind = next(k for k in ("accept", "respond", "ignore") if command[k])
    rest = command["rest"]
    reason = ""
    if kind == "respond":
        split = REASON_RE.search(rest)
        if split is None:
            return ReviewDecision(refusal="a rejection needs its reason, for the redraft: 'reject it because ...'")
        rest, reason = rest[: split.start()], rest[split.end() :].strip()
        if len(reason.split()) < 2:
            return ReviewDecision(refusal="a rejection needs its reason, for the redraft: 'reject it because ...'")
    else:
        rest = rest.rstrip(" .!")
    if "?" in rest:
        return ReviewDecision(refusal="your message asks rather than decides")
    refs: set[str] = set()
    numbers: set[str] = set()
    names: set[str] = set()
    known_names = set().union(*(_names(r.title)[1] for r in pending)) if pending else set()
    for token in re.findall(r"[#\w-]+", rest):
        word = token.casefold().lstrip("#")
        if word in TARGET_WORDS:
            continue
        if word.isdigit():
            numbers.add(word)
        elif REF_RE.fullmatch(word):
            refs.add(word)
        elif word in known_names:
            names.add(word)
        else:
            return ReviewDecision(
                refusal=f"'{token}' is not part of naming a review: write just the decision, as in 'approve dc2c4715'"
            )
    found = list(pending)
    for ref in refs:
        found = [r for r in found if r.thread_id.casefold().startswith(ref)]
    for number in numbers:
        found = [r for r in found if number in _names(r.title)[0]]
    for name in names:
        found = [r for r in found if name in _names(r.title)[1]]
    named = bool(refs or numbers or names)
    if not named:  # "approve it": the one review whose gate this conversation has shown
        found = [r for r in found if r.gate_ref in shown]
    if not found:
        if not pending:
            return ReviewDecision(refusal="nothing is waiting for your review")
        what = " ".join(sorted(refs | numbers | names))
        return ReviewDecision(
            refusal=f"no review matching {what} is waiting" if named else "say which review, by the id shown"
        )
    if len(found) > 1:
        return ReviewDecision(refusal="more than one review matches: say which, by the id shown")
    (review,) = found
    if review.gate_ref not in shown:
        return ReviewDecision(
            refusal=f"{short_ref(review.thread_id)} waits at a gate not shown in this conversation yet"
            f" {gate_line(review)}; read it below, then decide"
        )
    decision: dict[str, object] = {"type": kind}
    if kind == "respond":
        decision["args"] = reason
    return ReviewDecision(review, decision)


def decided(kind: str, review: PendingReview, outcome: Mapping[str, object]) -> str:
    """Say what a decision did: the review, and where its thread now stands."""
    head = f"{PAST.get(kind, kind)}: {review.thread_id} ({review.title})."
    values = outcome.get("values")
    error = outcome.get("error")
    interrupts = outcome.get("interrupts")
    if isinstance(interrupts, Sequence) and interrupts:
        gate = str(interrupts[0].get("id", ""))[:8] if isinstance(interrupts[0], Mapping) else ""
        return f"{head} It waits for your review again (gate {gate}): `nova reviews show {review.thread_id}`."
    if isinstance(error, Mapping):
        return f"{head} It then stopped at {error.get('step')}: {error.get('error')}"
    result = values.get("result") if isinstance(values, Mapping) else None
    return f"{head} Finished" + (f"; result: {result}" if isinstance(result, str) and result else ".")
