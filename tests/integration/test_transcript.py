"""The transcript keeps compacted turns in order, and re-appending the same message changes nothing."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from api.db import migrate, open_pool
from api.persistence import PgTranscript


async def test_transcript_keeps_order_and_ignores_repeats(pg_url: str) -> None:
    async with open_pool(pg_url) as pool:
        await migrate(pool)
        transcript = PgTranscript(pool)
        first = [
            HumanMessage("what is on today?", id="h1"),
            AIMessage("Two meetings.", id="a1", response_metadata={"agent": "chat.planner"}),
        ]
        await transcript.append("t1", first)
        await transcript.append("t1", first)  # a retried compaction step
        await transcript.append("t1", [HumanMessage("and tomorrow?", id="h2")])
        await transcript.append("t2", [HumanMessage("other thread", id="h1")])
        rows = await transcript.read("t1")
        assert [(r["role"], r["agent"], r["content"]) for r in rows] == [
            ("human", None, "what is on today?"),
            ("ai", "chat.planner", "Two meetings."),
            ("human", None, "and tomorrow?"),
        ]
