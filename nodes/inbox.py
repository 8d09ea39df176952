"""Review gates from chat: the decision the owner's own message states, and what it did.

Approving in chat applies work (a patch written, a draft made final), so the message is read by rule and never
by the model, and when in doubt nothing is decided: asking the owner to write it plainly costs a line, a wrong
approval costs far more. A decision is a command:

- it starts with the verb: approve, accept, lgtm, sign off on; reject, decline; ignore;
- it names the review by the id Nova printed (the thread's, or the gate's), and nothing else stands around the
  name but "it", "the", "please" and thanks; "it" (or no name) is allowed for approve and reject only, and only
  when Nova's reply just before showed exactly one gate and was not itself the report of a decision;
- a rejection gives its reason after "because", a colon, a comma or a dash, and a reason that asks, takes the
  rejection back or holds another decision is refused;
- the review's current gate must have been shown in this conversation (pauses and the review list print
  "(gate 3f2a1b7c)"): a gate raised since, by a redraft after a rejection elsewhere or by the next review in the
  queue when a turn is replayed, is shown first, not decided.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Decision = Mapping[str, object]

MENTION = r"(?:@orchestration\.reviews[\s,:]+)?"  # the message sent to this agent by name, not to a person
LEAD = r"^\s*" + MENTION + r"(?:(?:ok(?:ay)?|yes|yep|sure|right|then|so|please)\b[\s,.!]*)*"
COMMAND_RE = re.compile(
    LEAD + r"(?:(?P<accept>approve|accept|lgtm|sign off on)|(?P<respond>reject|decline)|(?P<ignore>ignore))\b"
    r"(?P<rest>.*)$",
    re.I | re.S,
)
ANY_VERB_RE = re.compile(r"\b(approve|accept|lgtm|reject|decline|ignore|dismiss|sign off)\b", re.I)
REASON_RE = re.compile(  # what ends the review's name in a rejection and starts its reason
    r"\s*(?:(?:[:;,—–]|\s-\s|\.\s)\s*(?:(?:because|since|as)\b\s*:?\s*)?"
    r"|\b(?:because|since|as|for the following reason|with (?:a |the )?(?:reason|note|comment))\b\s*:?\s*)",
    re.I,
)
TAKE_BACK_RE = re.compile(  # in a rejection's reason: a question, a take-back, a condition, or another decision
    r"\?|^(?:no|nope|sorry|oops|nvm|or|maybe|if|unless|hold|hang|forget|disregard|lol|not|never)\b"
    r"|\b(?:wait|kidding|jk|never ?mind|actually|don'?t (?:reject|do)|do not (?:reject|do)|not yet|hold off|undo"
    r"|cancel that|scratch that|approv\w*|accept\w*|lgtm|reject\w*|declin\w*|ignor\w*|dismiss\w*|sign(?:ed|ing)? off"
    r"|ship(?:ped|ping)? it|merg\w*)\b|\+1",
    re.I,
)
TOKEN_RE = re.compile(r"\s*([#\w]+(?:-[#\w]+)*)")
POLITE = frozenset("please thanks thank you so much a lot".split())  # not a reason: "reject it, thank you"
FILLERS = frozenset("it this that one the please thanks thank you".split())
REF_RE = re.compile(r"(?=[0-9a-f-]*\d)[0-9a-f][0-9a-f-]{5,}", re.I)  # an id prefix has a digit: not "facade"
PAST = {"accept": "Approved", "respond": "Rejected with your comment", "ignore": "Ignored"}
REPORTS = tuple(f"{label}: " for label in PAST.values())  # how the report of a decision starts (decided())


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
    """Return the words that show a gate in chat; a decision on it needs them in the conversation."""
    return f"(gate {review.gate_ref})"


def _example(pending: Sequence[PendingReview]) -> str:
    return "as in 'approve <id>' or 'reject <id> because ...', with the id Nova showed"


GATE_RE = re.compile(r"\(gate ([0-9a-f]{8})\)")  # how a reply shows a gate (`gate_line`)


def shown_alone(reply: str, pending: Sequence[PendingReview]) -> PendingReview | None:
    """Return the review whose gate Nova's last reply showed, when it showed exactly one and decided nothing."""
    if any(report in reply for report in REPORTS):
        return None  # a decision's report (its list may show a redraft's gate, unread): "it" is not that
    gates = set(GATE_RE.findall(reply))
    hits = [r for r in pending if r.gate_ref in gates]
    return hits[0] if len(gates) == 1 and len(hits) == 1 else None


def read_decision(
    message: str, pending: Sequence[PendingReview], shown: str = "", last_reply: str = ""
) -> ReviewDecision:
    """Read the decision on one paused review that the owner's message states, by rule, or say why there is none.

    `shown` is the conversation before the message, `last_reply` Nova's reply just before it. A message that is
    not about a decision gives an empty ReviewDecision (nothing to say); one that mentions a decision but is not
    clearly one gives a refusal that says how to write it.
    """
    text = message.strip()
    command = COMMAND_RE.match(text)
    if command is None:
        if ANY_VERB_RE.search(text):
            return ReviewDecision(refusal=f"to decide, start the message with the decision, {_example(pending)}")
        return ReviewDecision()
    kind = next(k for k in ("accept", "respond", "ignore") if command[k])
    rest, reason = command["rest"], ""
    if kind == "respond":
        end = _target_end(rest)
        split = REASON_RE.match(rest, end)
        if split is not None and split.end() > end:  # the name, a separator, the reason
            rest, reason = rest[:end], rest[split.end() :].strip()
        elif not rest[end:].strip(" .!"):
            return ReviewDecision(refusal="a rejection needs its reason, for the redraft: 'reject it because ...'")
        meant = [w for w in re.findall(r"[^\W\d_][\w'-]*", reason) if w.casefold() not in POLITE]
        if reason and len(meant) < 2:
            return ReviewDecision(refusal="a rejection needs its reason, for the redraft: 'reject it because ...'")
        if TAKE_BACK_RE.search(reason):
            return ReviewDecision(refusal="the reason asks, takes the rejection back or holds another decision")
        if any(_refers(ref, r) for ref in REF_RE.findall(reason.casefold()) for r in pending):
            return ReviewDecision(refusal="the reason names a review: decide on one review per message")
    rest = rest.strip().rstrip(".!").strip()
    if re.search(r"[^\w\s,#-]", rest):
        return ReviewDecision(refusal=f"write just the decision and the review's id, {_example(pending)}")
    refs: set[str] = set()
    for token in re.findall(r"[#\w]+(?:-[#\w]+)*", rest):
        word = token.casefold().lstrip("#")
        if REF_RE.fullmatch(word):
            refs.add(word)
        elif word not in FILLERS:
            return ReviewDecision(refusal=f"'{token}' does not name a review: name it by its id, {_example(pending)}")
    if not pending:
        return ReviewDecision(refusal="nothing is waiting for your review")
    if refs:
        for ref in sorted(refs):
            found = [r for r in pending if _refers(ref, r)]
            if len(found) != 1:
                which = "more than one review" if found else "no review waiting"
                return ReviewDecision(refusal=f"{ref} matches {which}")
        if len({r.thread_id for ref in refs for r in pending if _refers(ref, r)}) != 1:
            return ReviewDecision(refusal="the ids name more than one review: decide on one review per message")
        review = next(r for r in pending if _refers(next(iter(refs)), r))
        if review.gate_ref not in shown:
            return ReviewDecision(
                refusal=f"{short_ref(review.thread_id)} waits at a gate not shown in this conversation yet (a"
                f" redraft, or raised since): say 'show {short_ref(review.thread_id)}' here, or read it with"
                f" `nova reviews show {review.thread_id}` or on the Reviews"
                " page, then decide"
            )
    else:  # "approve it": the one gate Nova's last reply showed; never "ignore it"
        alone = shown_alone(last_reply, pending) if kind != "ignore" else None
        if alone is None:
            return ReviewDecision(refusal=f"say which review, by the id shown, {_example(pending)}")
        review = alone
    if kind == "respond" and not reason:  # no path gets here without one; a rejection never goes out empty
        return ReviewDecision(refusal="a rejection needs its reason, for the redraft: 'reject it because ...'")
    decision: dict[str, object] = {"type": kind}
    if kind == "respond":
        decision["args"] = reason
    return ReviewDecision(review, decision)


def _refers(ref: str, review: PendingReview) -> bool:
    """Whether an id prefix from a message names this review (its thread id or its gate's id)."""
    return review.thread_id.casefold().startswith(ref) or review.gate.casefold().startswith(ref)


def _target_end(rest: str) -> int:
    """Return where the review's name ends in a rejection: after the leading filler words and ids."""
    at = 0
    while (match := TOKEN_RE.match(rest, at)) is not None:  # contiguous words only: a separator ends the name
        word = match[1].casefold().lstrip("#")
        if word not in FILLERS and not REF_RE.fullmatch(word):
            break
        at = match.end()
    return at


def decided(kind: str, review: PendingReview, outcome: Mapping[str, object]) -> str:
    """Say what a decision did: the review, and where its thread now stands."""
    head = f"{PAST.get(kind, kind)}: {review.thread_id} ({review.title})."
    values = outcome.get("values")
    error = outcome.get("error")
    if outcome.get("interrupts"):
        return (
            f"{head} A redraft waits for your review: say 'show {short_ref(review.thread_id)}' here, or read it with"
            f" `nova reviews show {review.thread_id}`."
        )
    if isinstance(error, Mapping):
        return f"{head} It then stopped at {error.get('step')}: {error.get('error')}"
    result = values.get("result") if isinstance(values, Mapping) else None
    return f"{head} Finished" + (f"; result: {result}" if isinstance(result, str) and result else ".")


_SEE = r"show|see|view|display|look(?:ing)? at|what'?s in|what (?:does|would) .{1,40} change|diff|patch"
# What makes a request naming a review by id one for the review inbox: it asks to see it or decides on it
# ("draft a client update about the fix in dc2c4715" names it and asks for something else).
SEE_RE = re.compile(rf"\b(?:{_SEE})\b", re.I)
# A request to see a review in chat; it may say so more loosely ("open the draft"), as it also names the review.
SHOW_RE = re.compile(rf"\b(?:{_SEE}|open|read|proposal|draft)\b", re.I)
NO_SHOW_RE = re.compile(r"\b(?:don'?t|do not|no need to|not|never)\s+(?:\w+\s+)?(?:show|see|view|open|read)\b", re.I)


def pending_of(items: Sequence[Mapping[str, Any]]) -> list[PendingReview]:
    """Return the reviews a work port lists (`pending_reviews`), each with its first pending gate."""
    return [
        PendingReview(str(i["thread_id"]), str(i.get("title") or ""), str(i["interrupts"][0].get("id", "")))
        for i in items
        if i.get("interrupts")
    ]


def about_a_review(message: str) -> bool:
    """Whether a message that names a review by id is for the review inbox: it asks to see it or decides."""
    return bool(SEE_RE.search(message) or ANY_VERB_RE.search(message))


def named_review(message: str, pending: Sequence[PendingReview]) -> PendingReview | None:
    """Return the one waiting review the message names by its id (thread or gate), else None."""
    found = {r.thread_id: r for ref in REF_RE.findall(message) for r in pending if _refers(ref.casefold(), r)}
    return next(iter(found.values())) if len(found) == 1 else None


def review_to_show(message: str, pending: Sequence[PendingReview], last_reply: str = "") -> PendingReview | None:
    """Return the paused review the owner's message asks to see, or None when it asks for none.

    The message must ask to see something (show, see, open, diff, patch, ...) and name one waiting review by its
    id ("show me the diff for de763530"), or, naming none, mean the one review Nova's reply just before showed
    alone or the only one waiting ("let me see the pending proposal"). A decision is never a request to show.
    """
    text = message.strip().replace("\u2019", "'")
    if ANY_VERB_RE.search(text) or NO_SHOW_RE.search(text) or not SHOW_RE.search(text):
        return None
    if REF_RE.search(text) and (named := named_review(text, pending)) is not None:
        return named
    if len(pending) == 1:  # an id-like word that names no waiting review (a date, a commit) names nothing here
        return pending[0]
    return shown_alone(last_reply, pending) if last_reply else None


FENCED_DIFF_RE = re.compile(r"```[ \t]*(?:diff|patch)?[ \t]*\n.*?```\n?", re.S | re.I)


def shown_review(review: PendingReview, value: object) -> str:
    """Write a paused review for chat: how to decide, what it asks, its inputs, and its diff in full.

    The decision line comes second, so a long review cut short still says how to act on it; a diff the model
    quoted in its rationale is not repeated: the diff under review is shown once, before the longer texts.
    """
    ref = short_ref(review.thread_id)
    lines = [
        f"Review {review.thread_id} ({review.title}) {gate_line(review)}",
        f"Decide here: 'approve {ref}', 'reject {ref} because ...' or 'ignore {ref}'.",
    ]
    if not (isinstance(value, Mapping) and isinstance(value.get("action_request"), Mapping)):
        return "\n".join([*lines, str(value)])
    request = value["action_request"]
    lines.append(f"{request.get('action', '?')}: {value.get('description', '')}".rstrip(": "))
    args = request.get("args")
    given = {k: v for k, v in args.items() if v not in ("", None, [], {})} if isinstance(args, Mapping) else {}
    prose: list[str] = []
    for key, arg in given.items():
        if key == "diff":
            continue
        if isinstance(arg, list) and all(isinstance(a, Mapping) for a in arg):  # findings: one line each
            lines.append(f"{key}:")
            lines.extend(f"- {_finding(a)}" for a in arg)
        elif isinstance(arg, str) and "\n" in arg:
            said = FENCED_DIFF_RE.sub("(the diff is shown above)\n", arg).strip() if "diff" in given else arg.strip()
            prose.append(f"{key}:\n{said}")
        else:
            lines.append(f"{key}: {arg}")
    if isinstance(given.get("diff"), str):
        lines.append(f"```diff\n{given['diff'].rstrip()}\n```")
    return "\n".join([*lines, *prose])


def _finding(item: Mapping[str, Any]) -> str:
    where = ":".join(str(item[k]) for k in ("file", "line") if item.get(k) is not None)
    said = item.get("reason") or item.get("message") or ", ".join(f"{k}={v}" for k, v in item.items())
    return f"{where} {said}".strip()
