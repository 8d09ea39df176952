"""The orchestrator graph's state and its narrow input and output schemas."""

from __future__ import annotations

from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from state.memory import MemoryRef
from state.reducers import replace_list
from state.routing import RouteDecision


class TurnError(TypedDict):
    """What failed in a turn, shown to the user without a stack trace."""

    node: str
    kind: str
    message: str


class NovaInput(TypedDict):
    """What a caller sends: new messages."""

    messages: Annotated[list[AnyMessage], add_messages]


class NovaOutput(TypedDict):
    """What a caller gets back: the thread, the last routing decision and what the turn stored in memory."""

    messages: Annotated[list[AnyMessage], add_messages]
    route: RouteDecision | None
    remembered: list[str] | None


class NovaState(TypedDict, total=False):
    """The orchestrator's full state, checkpointed per thread.

    Attributes:
        messages: The conversation.
        route: The last routing decision (also in the routing log).
        active_agent: The agent that answered last, so follow-ups can stay with it.
        pending_clarify: Candidate ids offered in a clarifying question, resolved by the next turn.
        recalled: Memories put into this turn's context.
        error: Set when a turn ended because a step failed after its retries.
        summary: A rolling summary of turns moved out of `messages` into the transcript.
        remembered: What the memory write path stored or retired from this turn's message, as the store's record
            lines ("stored in archive as general/wayne: Wayne is ..."), so the owner sees every write; None when
            nothing was.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    route: RouteDecision | None
    active_agent: str | None
    pending_clarify: list[str] | None
    recalled: Annotated[list[MemoryRef], replace_list]
    error: TurnError | None
    summary: str | None
    remembered: list[str] | None
