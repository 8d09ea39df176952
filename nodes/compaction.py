"""Keep a long thread's state small: old turns move to the transcript and a rolling summary.

A thread's checkpoint holds only the latest messages, so each turn stores and loads about the same
number of bytes however long the conversation has run. What was said earlier is not lost: every
message moved out is appended to the thread's transcript (Postgres, through `TranscriptPort`), facts
were already taken into memory turn by turn, and a short summary of the moved turns stays in state
for the specialists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.config import get_config

from nodes.services import Services
from state.nova import NovaState

COMPACT_AT = 40
KEEP_MESSAGES = 20
SUMMARY_CHARS = 2400


def needs_compaction(messages: Sequence[AnyMessage], limit: int = COMPACT_AT) -> bool:
    """Return True when the thread holds more messages than it should carry into the next turn."""
    return len(messages) > limit


def split_for_compaction(messages: Sequence[AnyMessage], keep: int = KEEP_MESSAGES) -> list[AnyMessage]:
    """Return the messages to move out, ending before a human message so kept turns stay whole."""
    cut = max(0, len(messages) - keep)
    while cut > 0 and not isinstance(messages[cut], HumanMessage):
        cut -= 1
    return list(messages[:cut])


def summary_lines(messages: Sequence[AnyMessage]) -> list[str]:
    """Return one short line per moved message: what was asked, and which agent answered."""
    lines = []
    for msg in messages:
        text = " ".join(msg.text.split())
        if isinstance(msg, HumanMessage):
            lines.append(f"- asked: {text[:110]}")
        elif isinstance(msg, AIMessage):
            agent = msg.response_metadata.get("agent") or msg.name or "nova"
            lines.append(f"  {agent} answered: {text[:90]}")
    return lines


def roll_summary(previous: str | None, moved: Sequence[AnyMessage], limit: int = SUMMARY_CHARS) -> str:
    """Append the moved turns to the summary, dropping its oldest lines beyond `limit` characters."""
    lines = [ln for ln in (previous or "").splitlines() if ln and not ln.startswith("(")]
    lines += summary_lines(moved)
    dropped = 0
    while lines and sum(len(ln) + 1 for ln in lines) > limit:
        lines.pop(0)
        dropped += 1
    head = (
        [f"(earlier turns are in the transcript: `nova threads show`; {dropped} lines omitted here)"] if dropped else []
    )
    return "\n".join(head + lines)


def make_compact_history(services: Services) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that moves old turns to the transcript and folds them into the summary."""

    async def compact_history(state: NovaState) -> dict[str, Any]:
        """Move all but the latest turns out of the checkpointed state."""
        moved = split_for_compaction(state.get("messages", []))
        if not moved:
            return {}
        thread = str(get_config().get("configurable", {}).get("thread_id", ""))
        await services.transcript.append(thread, moved)
        return {
            "messages": [RemoveMessage(id=m.id) for m in moved if m.id],
            "summary": roll_summary(state.get("summary"), moved),
        }

    return compact_history
