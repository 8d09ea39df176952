"""Nodes of the memory-curation graph: find the conflicts curation cannot settle, ask the owner, apply the answer.

The gate (`review_conflict`) raises one `resolve_memory_conflict` review per conflict, in turn, so a thread
has at most one pending interrupt and `Command(resume=<ReviewDecision>)` always answers the one shown.
Decisions:
    accept: apply the suggestion (keep `suggestion.keep` current, supersede the others).
    edit: args `{"keep": "<memory id>"}` keeps that memory instead, or `{"text": "..."}` stores the corrected
        statement on the conflict's subject and supersedes every conflicting memory. The agent-inbox shape
        `{"action": ..., "args": {...}}` is accepted too.
    respond: a comment; the memories stay as they are, the comment is recorded on each, and this conflict
        is not raised again.
    ignore: nothing changes; the conflict comes back on the next curation.
Nothing is deleted: settled memories are marked superseded and linked to the one that replaced them.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, Protocol

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from nodes.memory_records import Conflict, MemoryInputError, MemoryRecord
from nodes.memory_rules import MAX_MEMORY_CHARS
from nodes.review import request_review
from state.context import Context
from state.review import ActionRequest, ReviewDecision, ReviewRequest

ACTION = "resolve_memory_conflict"


class CurationPort(Protocol):
    """The memory operations the curation graph needs (`nodes.memory.MemoryStore` implements them)."""

    async def conflicts(self, user_id: str) -> list[Conflict]:
        """Return the unresolved conflicts of a user."""
        ...

    async def resolve_conflict(
        self,
        user_id: str,
        ids: Sequence[str],
        *,
        keep: str | None = None,
        text: str | None = None,
        reason: str,
        thread_id: str | None = None,
    ) -> str:
        """Keep one memory current (or store corrected text) and supersede the rest; say what happened."""
        ...

    async def note_conflict(
        self, user_id: str, ids: Sequence[str], comment: str, *, thread_id: str | None = None
    ) -> str:
        """Leave a conflict as it is with the owner's comment; say what happened."""
        ...


class MemoryCurateInput(TypedDict, total=False):
    """What a curation run takes: at most how many conflicts to raise (all when unset)."""

    limit: int


class MemoryCurateOutput(TypedDict, total=False):
    """What a curation run reports: the conflicts raised and one outcome line per conflict."""

    conflicts: list[dict[str, Any]]
    outcomes: list[str]


class MemoryCurateState(TypedDict, total=False):
    """The curation thread: whose memory, the conflicts found, which one is under review, its decision."""

    limit: int
    user_id: str
    conflicts: list[dict[str, Any]]
    position: int
    decision: dict[str, Any] | None
    outcomes: Annotated[list[str], operator.add]


def record_payload(record: MemoryRecord) -> dict[str, Any]:
    """Return what a reviewer sees of one memory: its text, standing and provenance."""
    return {
        "id": record.id,
        "text": record.text,
        "subject": record.subject,
        "value": record.value,
        "kind": record.kind,
        "tier": record.tier,
        "status": record.status,
        "pinned": record.pinned,
        "namespace": record.namespace,
        "confidence": record.confidence,
        "use_count": record.use_count,
        "valid_from": record.valid_from.isoformat(),
        "provenance": {
            "thread_id": record.thread_id,
            "message_id": record.message_id,
            "agent_id": record.agent_id,
            "method": record.method,
            "extracted_at": record.extracted_at.isoformat(),
        },
    }


def conflict_args(conflict: Conflict) -> dict[str, Any]:
    """Return the `resolve_memory_conflict` action args of a conflict."""
    keep = next(r for r in conflict.records if r.id == conflict.keep)
    return {
        "subject": conflict.subject,
        "memories": [record_payload(r) for r in conflict.records],
        "suggestion": {
            "keep": conflict.keep,
            "supersede": [r.id for r in conflict.records if r.id != conflict.keep],
            "text": keep.text,
            "reason": f"keep {conflict.keep[:8]}: {conflict.reason}",
        },
    }


def conflict_request(args: dict[str, Any], note: str = "") -> ReviewRequest:
    """Return the review request for one conflict."""
    lines = [f"{len(args['memories'])} active memories about {args['subject']} disagree:"]
    lines += [
        f"- {m['id'][:8]} ({m['valid_from'][:10]}, {m['provenance']['method']}): {m['text']}" for m in args["memories"]
    ]
    lines.append(f"Suggestion: {args['suggestion']['reason']}.")
    lines.append(
        'accept = apply the suggestion; edit = {"keep": "<id>"} or {"text": "corrected statement"}; '
        "respond = leave both, with your comment; ignore = ask again next time."
    )
    if note:
        lines.append(f"({note})")
    return ReviewRequest(action_request=ActionRequest(action=ACTION, args=args), description="\n".join(lines))


def edit_problem(args: dict[str, Any], decision: ReviewDecision) -> str | None:
    """Return why an edit decision cannot be applied to a conflict, or None when it can."""
    edited = edit_args(decision)
    ids = [m["id"] for m in args["memories"]]
    keep, text = edited.get("keep"), edited.get("text")
    if (keep is None) == (text is None):
        return 'an edit needs exactly one of {"keep": "<memory id>"} or {"text": "corrected statement"}'
    if keep is not None:
        matches = [i for i in ids if isinstance(keep, str) and len(keep) >= 4 and i.startswith(keep.strip().lower())]
        if len(matches) != 1:
            return f"keep must be one of the conflicting memory ids: {', '.join(i[:8] for i in ids)}"
        return None
    if not isinstance(text, str) or not text.strip():
        return "text must be the corrected statement"
    if len(text.strip()) > MAX_MEMORY_CHARS:
        return f"text has {len(text.strip())} characters; a memory holds at most {MAX_MEMORY_CHARS}"
    return None


def edit_args(decision: ReviewDecision) -> dict[str, Any]:
    """Return an edit's arguments, unwrapping the agent-inbox `{"action", "args"}` shape and `suggestion`."""
    args: dict[str, Any] = dict(decision.args) if isinstance(decision.args, dict) else {}
    if isinstance(args.get("args"), dict):
        args = dict(args["args"])
    if "keep" not in args and "text" not in args and isinstance(args.get("suggestion"), dict):
        suggestion = args["suggestion"]
        args = {k: suggestion[k] for k in ("keep", "text") if k in suggestion}
        if "keep" in args and "text" in args:
            args.pop("text")
    return args


def make_find_conflicts(memory: CurationPort) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node listing the caller's unresolved conflicts."""

    async def find_conflicts(state: MemoryCurateState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Find the conflicts of the run's user (from the context, never from the input)."""
        user = runtime.context.user_id
        found = await memory.conflicts(user)
        limit = state.get("limit")
        if limit is not None and limit > 0:
            found = found[:limit]
        return {"user_id": user, "conflicts": [conflict_args(c) for c in found], "position": 0, "decision": None}

    return find_conflicts


def route_after_find_conflicts(state: MemoryCurateState) -> Literal["review_conflict", "__end__"]:
    """Raise the first conflict, or end when there is none."""
    return "review_conflict" if state.get("conflicts") else "__end__"


async def review_conflict(state: MemoryCurateState) -> dict[str, Any]:
    """Pause for the owner's decision on the current conflict; re-ask with the reason on an unusable edit."""
    args = state["conflicts"][state.get("position", 0)]
    request = conflict_request(args)
    while True:
        decision = request_review(request)
        problem = edit_problem(args, decision) if decision.type == "edit" else None
        if problem is None:
            return {"decision": decision.model_dump(mode="json")}
        request = conflict_request(args, problem)


def make_apply_resolution(memory: CurationPort) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node applying a decision through the memory operations (idempotent: safe to re-run)."""

    async def apply_resolution(state: MemoryCurateState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Apply the decision on the current conflict and move to the next one."""
        position = state.get("position", 0)
        args = state["conflicts"][position]
        decision = ReviewDecision.model_validate(state.get("decision") or {"type": "ignore"})
        user = state["user_id"]
        thread = runtime.execution_info.thread_id if runtime.execution_info else None
        ids = [m["id"] for m in args["memories"]]
        subject = args["subject"]
        try:
            if decision.type == "accept":
                done = await memory.resolve_conflict(
                    user, ids, keep=args["suggestion"]["keep"], reason="conflict resolved at review", thread_id=thread
                )
            elif decision.type == "edit":
                edited = edit_args(decision)
                if edited.get("keep") is not None:
                    prefix = str(edited["keep"]).strip().lower()
                    keep = next(i for i in ids if i.startswith(prefix))
                    done = await memory.resolve_conflict(
                        user, ids, keep=keep, reason="conflict resolved at review (reviewer's choice)", thread_id=thread
                    )
                else:
                    done = await memory.resolve_conflict(
                        user,
                        ids,
                        text=str(edited["text"]).strip(),
                        reason="conflict resolved at review (corrected by the reviewer)",
                        thread_id=thread,
                    )
            elif decision.type == "respond":
                done = await memory.note_conflict(user, ids, str(decision.args).strip(), thread_id=thread)
            else:
                done = "ignored: left as is, raised again next time"
        except MemoryInputError as exc:
            done = f"not applied: {exc}"
        return {"outcomes": [f"{subject}: {done}"], "position": position + 1, "decision": None}

    return apply_resolution


def route_after_apply_resolution(state: MemoryCurateState) -> Literal["review_conflict", "__end__"]:
    """Raise the next conflict, or end after the last."""
    return "review_conflict" if state.get("position", 0) < len(state.get("conflicts", [])) else "__end__"
