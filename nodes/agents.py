"""Specialist nodes: a prompted reply, and a bounded tool loop driven by structured output."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from nodes.models import ModelLoader, is_transient
from nodes.prompts import MEMORY_BLOCK, SPECIALIST_FRAME, TOOL_PLANNER_PROMPT, memory_line
from nodes.tools import NovaTool, ToolCall, restates, wrote_memory
from state.cards import AgentCard
from state.context import Context
from state.memory import MemoryRef

HISTORY_MESSAGES = 12
HISTORY_CHARS = 6000
ECHO_MIN_CHARS = 24  # a repeated reply shorter than this is an acknowledgement, not a copied answer
RECORD_LINE_RE = re.compile(r"\s*\(record: ")  # the store's record line, as memory_remember's output ends
# A line that reports a memory write: the store's record, or an acknowledgement in memory_remember's words.
WRITE_CLAIM_RE = re.compile(
    r"\s*(?:>\s*)?(?:(?:[-*•+]|\d+[.)])\s+)?(?:[^\w\s(]\s*)?(?:\*\*|__|\*|_)?"  # quote, bullet, number, emoji, bold
    r"(?:(?:ok(?:ay)?|got it|sure|done)[,!.]?\s+)?"  # "Got it, noted: ..."
    r"(?:\(record: |(?:already noted|noted|remembered|stored|saved|forgotten)\b(?:\*\*|__|\*|_)?"
    r"\s*(?:[:\uff1a\u2014\u2013]|-\s))",
    re.IGNORECASE,
)
UNMADE_WRITE_HEAD = "This reply stored nothing in memory and removed nothing from it"
UNMADE_WRITE_NOTE = UNMADE_WRITE_HEAD + ", whatever these lines say:\n{lines}"
BACK_REFERENCE_RE = re.compile(
    r"\b(?:[Ii]t|[Tt]his|[Tt]hat|[Aa]bove|your (?:last )?(?:reply|answer|draft))\b"
)  # not "IT"
BACK_REFERENCE_WORDS = 8  # a request longer than this names what it works on
# Text of the request's own: a quote opening a word (an apostrophe never follows a space), any double quote,
# or "it is ..." / "that's ..." (a sentence to work on, not a pointer: "proofread it is a nice day").
OPEN_QUOTE_RE = re.compile(r"(?:^|\s)['\u2018`]\S|[\"\u201c\u201d\u201e\u00ab\u00bb]")
OWN_CLAUSE_RE = re.compile(
    r"\S\s+(?:it|this|that)(?:\s+(?:is|was|are|were|has|will|does|did|can)\b|['\u2019]s\b)", re.IGNORECASE
)
DASH_RE = re.compile(r"\s[-\u2013\u2014]+\s")
FILLER_WORDS = frozenset({"please", "pls", "plz", "thanks", "thx", "now", "again", "ok", "okay"})
NOT_WORKED_ON = ("clarify", "chat.general")  # a clarifying question or small talk is no text to work on
_CONTENT_WORD_RE = re.compile(r"\w{4,}")
PRONOUN_RE = re.compile(r"\b(?:it|its|this|that|they|them|their|he|she|him|her)\b", re.IGNORECASE)
REPLY_TAG = "nova:reply"  # the model call that writes a turn's answer: its tokens are the ones to show
REDO_TAG = "nova:redo"  # a reply written again: whoever streamed the first attempt's tokens drops them


class ToolResult(TypedDict):
    """One tool call and its output, kept inside the tool loop's state."""

    tool: str
    input: str
    output: str


class ToolChoice(BaseModel):
    """The model's pick of the next tool (structured output, so no native tool calling is needed)."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(description="a tool name from the list, or 'none' to answer now")
    input: str = Field(description="the text to give the tool; empty for 'none'")


def recent_history(messages: Sequence[AnyMessage]) -> list[BaseMessage]:
    """Keep the latest messages within a character budget, so a long thread fits a small context.

    Earlier replies go without the memory store's record lines ("(record: stored in archive as ...)"): a small
    model that saw them wrote one into an answer of its own, for a memory no tool had stored.
    """
    kept: list[BaseMessage] = []
    budget = HISTORY_CHARS
    for msg in reversed(list(messages)[-HISTORY_MESSAGES:]):
        text = msg.text if isinstance(msg.content, (str, list)) else str(msg.content)
        if kept and len(text) > budget:
            break
        budget -= len(text)
        kept.append(_without_records(msg))
    kept.reverse()
    while kept and not isinstance(kept[0], HumanMessage):
        kept.pop(0)
    return kept


def _without_records(message: BaseMessage) -> BaseMessage:
    text = message.text if isinstance(message, AIMessage) else ""
    if "(record: " not in text and UNMADE_WRITE_HEAD not in text:
        return message
    reply = text.split("\n\n" + UNMADE_WRITE_HEAD)[0]  # the note on unmade writes quotes the record too
    kept = "\n".join(line for line in reply.splitlines() if not RECORD_LINE_RE.match(line))
    return message.model_copy(update={"content": kept})


def refers_back(request: str) -> bool:
    """Return True when a request gives no text of its own and points at one before it.

    One word besides please/thanks ("summarise", "tl;dr", "shorter please"), or a short request that points back
    with it, this, that, above or "your reply" ("make it more formal", "proofread that"). Text after a colon or a
    dash, in quotes (straight or typographic), on further lines, or a sentence of its own ("proofread it is a nice
    day") is the request's own; so is a one-word question ("Why?").
    """
    request = request.strip()
    if not request or len(request.splitlines()) > 1 or ":" in request or OPEN_QUOTE_RE.search(request):
        return False
    if DASH_RE.search(request):
        return False
    words = [w for w in request.split() if w.strip(",.!").casefold() not in FILLER_WORDS] or request.split()
    if len(words) == 1:
        return not request.endswith("?") and not words[0].strip(".!").isdigit()
    return (
        len(request.split()) <= BACK_REFERENCE_WORDS
        and bool(BACK_REFERENCE_RE.search(request))
        and not OWN_CLAUSE_RE.search(request)
    )


def with_last_reply(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Return the history with the reply before the request put into the request, when the request refers back.

    The 1.5B model answered "summarise", after a draft it had just written, with "Summarise the text." The reply
    taken is the last one that is not a clarifying question or small talk ("You're welcome!").
    """
    if len(history) < 2 or not isinstance(history[-1], HumanMessage) or not refers_back(history[-1].text):
        return list(history)
    earlier = next((m for m in reversed(history[:-1]) if _worked_on(m)), None)
    if earlier is None:
        return list(history)
    request = HumanMessage(f"{history[-1].text}\n\nThe text (your reply before this message):\n{earlier.text}")
    return [*history[:-1], request]


def _asked_afresh(state: dict[str, Any]) -> bool:
    """Return False when the latest message answers a clarifying question or corrects the route: it is no request."""
    route = state.get("route")
    if route is None or route.request:  # the request an answer or a correction carries on is last (asked_messages)
        return True
    correction = route.method == "override" and not route.text.lstrip().startswith("@")
    return route.method != "clarify-answer" and not correction


def _worked_on(message: BaseMessage) -> bool:
    agent = message.response_metadata.get("agent") if isinstance(message, AIMessage) else None
    return isinstance(message, AIMessage) and bool(message.text.strip()) and agent not in NOT_WORKED_ON


def citations(tools: Sequence[str], results: Sequence[ToolResult]) -> str:
    """Return the headline of each cited tool's last result ("erp_tenancy: 10 finding(s) in ..."), one a line.

    A small model's prose can contradict the result in view: the 1.5B model answered "any querysets that skip the
    branch filter?" with "No querysets that skip the branch filter." over an audit of 10 findings. The headline
    under the reply is the tool's own word.
    """
    lines = []
    for tool in tools:
        last = next((r for r in reversed(results) if r["tool"] == tool and succeeded(r)), None)
        if last is not None and (head := last["output"].strip().split("\n", 1)[0].strip()):
            lines.append(f"{tool}: {head}")
    return "\n".join(lines)


def unmade_writes(reply: str, results: Sequence[ToolResult]) -> list[str]:
    """Return the reply's lines that say something was stored in (or dropped from) memory when nothing was.

    Only a memory tool that ran this turn writes memory from a reply. The 1.5B model, with stored facts
    acknowledged earlier in the conversation, answered a tenancy question with "Noted: No querysets that skip
    the branch filter found." and a record line in the store's format, for a memory that does not exist.
    """
    if any(wrote_memory(r["tool"], r["output"]) for r in results):
        return []
    return [line.strip() for line in reply.splitlines() if WRITE_CLAIM_RE.match(line)]


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def echoes_earlier_reply(text: str, history: Sequence[BaseMessage], grounds: Sequence[str] = ()) -> bool:
    """Return True when a new reply repeats, word for word, an earlier reply in the history.

    Short replies ("You're welcome!", "Done.") are fairly repeated and never count, and neither does a reply that
    restates what the owner stated in the conversation (a question restated is no answer) or one of `grounds`
    (the memories recalled for the turn): after "Find a Sign uses a transparent listing model" was said and
    echoed, "what do you know about Find a Sign?" has that sentence for its answer, and asking again only made
    the model drop half of it. A repeat with no word of four letters or more from the request (or, when the
    request points back with a pronoun, from the message before it) is a copy all the same.
    """
    said = _squash(text)
    if len(said) < ECHO_MIN_CHARS:
        return False
    if not any(isinstance(m, AIMessage) and _squash(m.text) == said for m in history[:-1]):
        return False
    if not _content_words(_request_topic(history)) & _content_words(text):
        return True  # nothing of the request in it: a copy, however well it restates something else
    said_by_owner = (m.text for m in history if isinstance(m, HumanMessage) and not m.text.rstrip().endswith("?"))
    return not any(restates(text, source) for source in (*grounds, *said_by_owner))


def _content_words(text: str) -> set[str]:
    return set(_CONTENT_WORD_RE.findall(text.casefold()))


def _request_topic(history: Sequence[BaseMessage]) -> str:
    """Return the latest request, with the owner's message before it when it points back ("what about it?")."""
    humans = [m.text for m in history if isinstance(m, HumanMessage)]
    if not humans:
        return ""
    if len(humans) > 1 and PRONOUN_RE.search(humans[-1]):
        return f"{humans[-2]} {humans[-1]}"
    return humans[-1]


def without_reply(text: str, history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Return the history without the earlier replies that say `text` word for word (the ones a reply copied)."""
    said = _squash(text)
    return [m for m in history if not (isinstance(m, AIMessage) and _squash(m.text) == said)]


def latest_request(messages: Sequence[AnyMessage]) -> str:
    """Return the newest human message's text."""
    return next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")


def asked_messages(state: Mapping[str, Any]) -> list[AnyMessage]:
    """Return the conversation as the specialist works on it: its request last.

    When the latest message answered a clarifying question or corrected the route (the route's `request`),
    the exchange since the request it carries on (that request, the question or the misrouted reply, and the
    answer) is replaced by the request itself: a small model given "yes" last answered "I can't assist with
    that", and a pipeline read its inputs from "2".
    """
    messages: list[AnyMessage] = list(state["messages"])
    route = state.get("route")
    if route is None or not route.request:
        return messages
    latest = _latest_request_index(messages)
    humans = [i for i in range(latest - 1, -1, -1) if isinstance(messages[i], HumanMessage)]
    # The request's own message (a correction after a clarify answer reaches back past the answer), else the
    # message before the latest.
    start = next((i for i in humans if messages[i].text == route.request), humans[0] if humans else latest)
    return [*messages[:start], HumanMessage(content=route.request)]


def _latest_request_index(messages: Sequence[AnyMessage]) -> int:
    """Return the newest human message's position (0 when there is none)."""
    return next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), 0)


def system_prompt_for(card: AgentCard, recalled: Sequence[MemoryRef], summary: str | None = None) -> str:
    """Compose the specialist's system prompt from its card, the recalled memories and the thread summary."""
    prompt = SPECIALIST_FRAME.format(
        agent_id=card.id, description=card.description, system_prompt=card.system_prompt.strip()
    )
    if recalled:
        lines = "\n".join(memory_line(m.text, m.subject) for m in recalled)
        prompt += "\n\n" + MEMORY_BLOCK.format(memories=lines)
    if summary:
        prompt += "\n\nEarlier in this conversation (older turns, summarised):\n" + summary
    return prompt


FAILED_PREFIXES = ("tool failed:", "Refused:")  # how call_tool and the ERP tools report an output that is no result


def succeeded(result: ToolResult) -> bool:
    """Return True when a tool run gave a result (not a failure or a refusal)."""
    return not result["output"].startswith(FAILED_PREFIXES)


QUOTE_MIN_CHARS = 12  # shorter reply lines ("```sql", "Yes.") are not taken for quotes
QUOTE_OVERLAP = 0.6  # share of tokens a reply line has in common with a result line to count as copied from it
_QUOTE_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
UNVERIFIED_NOTE = "Not in the tool results as written here, so check before relying on it:\n{lines}"


def _quote_tokens(line: str) -> list[str]:
    # Case is ignored: "SELECT COUNT(*)" for the "SELECT count(*)" that ran is the same query, not an altered one.
    return _QUOTE_TOKEN_RE.findall(line.strip().lstrip("-*• ").replace("`", "").casefold())


def altered_quotes(reply: str, results: Sequence[ToolResult]) -> list[str]:
    """Return the reply's lines that look copied from a tool's input or output but are not in it.

    A small model answering from a schema copies its blocks, and sometimes writes one in the same shape that the
    tool never returned: "core.Customer (table core_customer; tenant key tenant)" beside the real "core.Branch
    (table core_branch; tenant key tenant)". A line counts as a copy when a result line has about as many tokens
    (one more or fewer) and shares at least QUOTE_OVERLAP of them; one that matches a result line exactly
    (case, bullets and backticks aside) is a faithful copy. Prose that quotes nothing is left alone.
    """
    exact: set[tuple[str, ...]] = set()
    by_length: dict[int, list[Counter[str]]] = {}
    for r in results:
        for line in f"{r['input']}\n{r['output']}".splitlines():
            tokens = _quote_tokens(line)
            if tokens and tuple(tokens) not in exact:
                exact.add(tuple(tokens))
                by_length.setdefault(len(tokens), []).append(Counter(tokens))
    altered = []
    for line in reply.splitlines():
        tokens = _quote_tokens(line)
        if len(line.strip()) < QUOTE_MIN_CHARS or tuple(tokens) in exact:
            continue
        mine = Counter(tokens)
        near = (c for n in (len(tokens) - 1, len(tokens), len(tokens) + 1) for c in by_length.get(n, ()))
        if any(sum((mine & c).values()) >= QUOTE_OVERLAP * max(len(tokens), c.total()) for c in near):
            altered.append(line.strip())
    return altered


def ungrounded_reply(card: AgentCard, tool: str, results: Sequence[ToolResult]) -> AIMessage:
    """Say that the answer needs a result of `tool` and none came, with the last attempt, instead of a guess."""
    text = f"I could not get a result from {tool} for this, so I will not guess an answer."
    tried = [r for r in results if r["tool"] == tool]
    if tried:
        last = tried[-1]
        text += f"\nLast attempt: {tool}({last['input'][:300]!r}) -> {last['output'][:300]}"
    else:
        text += f" The model did not get as far as running {tool}."
    text += "\nAsk again with more detail."
    return AIMessage(content=text, name=card.id.replace(".", "_"), response_metadata={"agent": card.id})


def make_respond(
    card: AgentCard, models: ModelLoader, tool_results_key: str | None = None
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that writes the specialist's reply."""

    async def respond(state: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Answer the latest message as this specialist."""
        model = models.for_tier(card.model_tier)
        system = system_prompt_for(card, state.get("recalled") or [], state.get("summary"))
        results: list[ToolResult] = state.get(tool_results_key, []) if tool_results_key else []
        if results:
            system += "\n\nTool results for this request:\n" + "\n".join(
                f"[{r['tool']}({r['input']!r})]\n{r['output']}" for r in results
            )
        if card.grounded_by and not any(r["tool"] == card.grounded_by and succeeded(r) for r in results):
            return {"messages": [ungrounded_reply(card, card.grounded_by, results)], "active_agent": card.id}
        history = recent_history(asked_messages(state))
        asked = with_last_reply(history) if card.works_on_last_reply and _asked_afresh(state) else history
        reply = await model.with_config(tags=[REPLY_TAG]).ainvoke([SystemMessage(system), *asked])
        grounds = [m.text for m in state.get("recalled") or []]
        if len(history) > 1 and echoes_earlier_reply(reply.text, history, grounds):
            # Small local models answer a new message by copying one of their earlier replies from the history
            # ("I don't have any information about that" again, after the fact was stored). Ask once more with
            # the copied reply taken out of the conversation, the rest kept (a rewrite needs the text before it);
            # if that gives the same text too, it is the answer.
            redo = model.with_config(tags=[REPLY_TAG, REDO_TAG])
            reply = await redo.ainvoke([SystemMessage(system), *without_reply(reply.text, asked)])
        # Notes are said after the reply, which has been streamed already.
        notes: list[str] = []
        metadata: dict[str, Any] = {"agent": card.id}
        if claims := unmade_writes(reply.text, results):
            notes.append(UNMADE_WRITE_NOTE.format(lines="\n".join(f"- {c}" for c in claims)))
            metadata["unmade_writes"] = claims
        if card.grounded_by and (altered := altered_quotes(reply.text, [r for r in results if succeeded(r)])):
            # The answer rests on the tool, so a line that only looks like the tool's is said to be unchecked.
            notes.append(UNVERIFIED_NOTE.format(lines="\n".join(f"- {a}" for a in altered)))
            metadata["unverified_lines"] = altered
        if cited := citations(card.cites, results):
            notes.append(cited)
        content: Any = "\n\n".join([reply.text, *notes]) if notes else reply.content
        message = AIMessage(content=content, name=card.id.replace(".", "_"), response_metadata=metadata, id=reply.id)
        return {"messages": [message], "active_agent": card.id}

    respond.__name__ = "respond"
    return respond


def make_choose_tool(
    card: AgentCard, models: ModelLoader, tools: Sequence[NovaTool]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that asks the model which tool to run next, through structured output."""
    listing = "\n".join(f"- {t.name}: {t.description}" for t in tools)
    names = {t.name for t in tools}

    async def choose_tool(state: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Pick the next tool or decide to answer."""
        results: list[ToolResult] = state.get("tool_results", [])
        if len(results) >= card.max_steps:
            return {"next_tool": None}
        model = models.for_tier(card.model_tier).with_structured_output(ToolChoice, method="json_schema")
        done = "\n".join(f"{r['tool']}({r['input']!r}) -> {r['output'][:400]}" for r in results) or "none yet"
        prompt = SystemMessage(
            system_prompt_for(card, state.get("recalled") or [], state.get("summary"))
            + "\n\n"
            + TOOL_PLANNER_PROMPT.format(tools=listing)
            + f"\n\nAlready used:\n{done}"
        )
        try:
            choice = await model.ainvoke([prompt, *recent_history(asked_messages(state))])
        except Exception as exc:
            if is_transient(exc):
                raise  # the node's RetryPolicy handles timeouts and dropped connections
            # A reply that is not a valid choice (cut off at the token limit, not JSON): small local models
            # do this. Do not fail the turn: give the request itself to the card's first tool, then answer.
            if results or not tools:
                return {"next_tool": None}
            return {"next_tool": {"tool": tools[0].name, "input": latest_request(asked_messages(state))}}
        assert isinstance(choice, ToolChoice)
        given = same_input(tool_input(choice.tool, choice.input))
        repeat = any(r["tool"] == choice.tool and same_input(r["input"]) == given for r in results)
        if choice.tool not in names or repeat:
            return {"next_tool": None}
        return {"next_tool": {"tool": choice.tool, "input": choice.input}}

    return choose_tool


def same_input(text: str) -> str:
    """Return a tool input as compared for repeats, without what the model adds to a request it re-picks.

    The 1.5B model re-picked a preloaded tool with a space or a stray backtick added to the request. Only the
    spacing and the backticks or quotes around it are ignored: case can matter (a SQL literal 'Open').
    """
    return " ".join(text.split()).strip("`'\" ")


def tool_input(tool: str, text: str) -> str:
    """Return a tool's input without the `tool('...')` wrapper a small model copies from the tools it already used.

    The 1.5B model gave erp_sql "erp_sql('SELECT count(*) FROM orders_order ...') AS n" in the shape of the
    "Already used" list; the SQL inside is what it meant.
    """
    match = re.match(rf"\s*{re.escape(tool)}\(\s*(['\"])(.*)\1\s*\)", text, re.S)
    return match.group(2) if match else text


async def call_tool(
    card: AgentCard, tool: NovaTool, text: str, runtime: Runtime[Context], messages: Sequence[AnyMessage] = ()
) -> ToolResult:
    """Run one tool with the run's user, thread and messages injected; a failure is reported to the model."""
    text = tool_input(tool.name, text)
    thread_id = str(get_config().get("configurable", {}).get("thread_id", ""))
    earlier = messages[: _latest_request_index(messages)]
    call = ToolCall(
        user_id=runtime.context.user_id,
        thread_id=thread_id,
        agent_id=card.id,
        request=latest_request(messages),
        conversation="\n".join(m.text for m in earlier),
        last_reply=next((m.text for m in reversed(earlier) if isinstance(m, AIMessage)), ""),
    )
    try:
        output = await tool.run(text, call)
    except Exception as exc:
        output = f"tool failed: {type(exc).__name__}: {exc}"
    return {"tool": tool.name, "input": text, "output": output[: tool.limit]}


def make_run_tool(card: AgentCard, tools: Sequence[NovaTool]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that runs the chosen tool with the run's user and thread injected."""
    by_name = {t.name: t for t in tools}

    async def run_tool(state: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Run the chosen tool and record its output."""
        pick = state["next_tool"]
        result = await call_tool(card, by_name[pick["tool"]], pick["input"], runtime, asked_messages(state))
        return {"tool_results": [result], "next_tool": None}  # the state's reducer appends

    return run_tool


def make_preload_tools(card: AgentCard, tools: Sequence[NovaTool]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the node that runs the card's `preload` tools on the request before the model's first choice.

    A small model asked to look the schema up first often writes the query straight away, on guessed names;
    with the schema already among the results it writes it on the real ones.
    """
    by_name = {t.name: t for t in tools}

    async def preload_tools(state: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Run each preload tool with the latest request as its input; answer with `answer_from`'s outputs."""
        messages = asked_messages(state)
        text = latest_request(messages)
        results = [await call_tool(card, by_name[n], text, runtime, messages) for n in card.preload]
        said = [r["output"].strip() for r in results if r["tool"] in card.answer_from and r["output"].strip()]
        if not said:
            return {"tool_results": results}
        reply = AIMessage(
            content="\n\n".join(said), name=card.id.replace(".", "_"), response_metadata={"agent": card.id}
        )
        return {"tool_results": results, "messages": [reply], "active_agent": card.id}

    return preload_tools


async def route_after_preload(state: dict[str, Any]) -> Literal["choose_tool", "__end__"]:
    """End the turn when the preload answered it (`answer_from`), else let the model choose."""
    return "__end__" if isinstance(state["messages"][-1], AIMessage) else "choose_tool"  # the request is last


async def route_after_choose_tool(state: dict[str, Any]) -> Literal["run_tool", "respond"]:
    """Run the picked tool, or answer when none was picked (async like route_at_start: no thread hop)."""
    return "run_tool" if state.get("next_tool") else "respond"
