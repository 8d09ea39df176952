"""Tools agents may use, registered by name.

A tool takes one text input chosen by the model and a `ToolCall` context the model never sees (the
authenticated user, the thread, the calling agent). Nova picks tools through structured output rather
than native function calling, which small local models handle unreliably.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nodes.inbox import decided, gate_line, pending_of, read_decision, review_to_show, short_ref, shown_review
from nodes.memory_rules import NOT_A_NOUN_PHRASE, STOPWORDS
from nodes.prompts import MEMORY_HITS, memory_line, said_to_user
from nodes.services import Services, TurnRef
from state.memory import MemoryRef, Remembered


@dataclass(frozen=True)
class ToolCall:
    """Run-scoped facts injected into a tool call."""

    user_id: str
    thread_id: str
    agent_id: str
    request: str = ""  # the owner's latest message, as written (decide_review acts on it, not on the input)
    conversation: str = ""  # the thread's earlier messages in state, joined (what was shown)
    last_reply: str = ""  # Nova's reply just before the request (what "it" can refer to)


@dataclass(frozen=True)
class NovaTool:
    """A named tool: its description is what the model reads."""

    name: str
    description: str
    run: Callable[[str, ToolCall], Awaitable[str]]
    limit: int = 4000  # characters of output kept for the model and the reply


@dataclass(frozen=True)
class ToolDeps:
    """What tools need: persistence ports and the roster (ids and descriptions)."""

    services: Services
    roster: Sequence[tuple[str, str]]


STANDS_OUT = 0.03  # a hit this far above the farthest of the nearest 8 is about the query, whatever its words
BACKGROUND_HITS = 4  # with fewer hits the background is the second one
_QUERY_NOISE = (
    STOPWORDS
    | NOT_A_NOUN_PHRASE
    | frozenset("know knows remember stored memory anything about me us have got latest".split())
)


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9][a-z0-9-]*", text.casefold().replace("'s", "").replace("\u2019s", ""))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _QUERY_NOISE and len(w) > 1}


def _names(text: str) -> set[str]:
    return _stems(" ".join(re.findall(r"\b[A-Z][\w'\u2019-]*", text)))


def relevant_hits(query: str, hits: Sequence[MemoryRef]) -> list[MemoryRef]:
    """Return the nearest memories that are about the query: sharing one of its words, or standing out.

    The nearest memories are not always relevant: the offline E5 embedder scores unrelated notes 0.80-0.82
    against a question, as high as some real answers, so no fixed cut-off separates them. Given them as
    matches, the 1.5B model answered "who knows the Sweeper Parts system best?" with "Hartley & Co" (a
    repository note) for a user who had stored nothing about it. A memory counts when it shares a content word
    with the query ("Kestrel", "accountant") or scores STANDS_OUT above the farthest of the nearest hits (the
    second, when there are few); when the query names someone or something ("how does Brightwater pay?"), only
    a memory that names it too. A query with no content word of its own ("what do you know about me") keeps
    them all.
    """
    asked = _stems(query)
    if not hits or not asked:
        return list(hits)
    names = _names(query)
    background = hits[-1].score if len(hits) >= BACKGROUND_HITS else hits[1].score if len(hits) > 1 else 2.0
    return [
        h
        for h in hits
        if (asked & _stems(h.text) or h.score >= background + STANDS_OUT) and (not names or names & _stems(h.text))
    ]


def _memory_search(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        hits = relevant_hits(query, await deps.services.memory.search(call.user_id, query))
        if not hits:
            return "No memories match."
        found = "\n".join(memory_line(m.text, f"{m.tier} memory {m.subject}") for m in hits)
        return MEMORY_HITS.format(memories=found)

    return NovaTool("memory_search", "Search what Nova remembers (input: what to look for).", run)


MEMORY_WRITE_TOOLS = frozenset({"memory_remember", "memory_forget"})  # the tools through which a reply writes memory
# What they answer when they did write: heard()'s acknowledgement, a write's record or a forget's report (not
# "not stored: ...", "discarded ...", "nothing forgotten: ..." or "memory is not configured ...").
WROTE_RE = re.compile(r"^(?:Already noted|Noted): |(?:^|; )(?:stored in |already known)|^forgotten\b")


def wrote_memory(tool: str, output: str) -> bool:
    """Return True when a tool's output says it stored a memory, found it known already, or forgot one."""
    return tool in MEMORY_WRITE_TOOLS and bool(WROTE_RE.search(output))


RESTATE_SHARE = 0.8  # share of a text's words found in a source for the text to restate it
_WORD_RE = re.compile(r"\w+")


def restates(text: str, source: str) -> bool:
    """Return True when nearly every word of `text` is a word of `source` (RESTATE_SHARE of them, at least).

    A source more than twice as long as the text is not restated by it (almost any summary's words are in its
    source).
    """
    words = _WORD_RE.findall(text.casefold())
    source_words = _WORD_RE.findall(source.casefold())
    if not words or len(source_words) > 2 * len(words):
        return False
    known = set(source_words)
    return sum(w in known for w in words) >= RESTATE_SHARE * len(words)


def heard(remembered: Remembered) -> str:
    """Lead a remember outcome with the fact as the user should hear it; the store's record follows.

    "stored in archive as client:hartley/renewal: The Hartley & Co contract renews every March." becomes
    "Noted: The Hartley & Co contract renews every March." with the record on the next line: a small model that
    copies the tool's output into its answer then starts with the fact, not with the bookkeeping. A message of
    several statements, or one that stored nothing, is given as the records.
    """
    if len(remembered.outcomes) != 1 or remembered.outcomes[0].kind not in ("stored", "known"):
        return str(remembered)
    (outcome,) = remembered.outcomes
    said = "Noted" if outcome.kind == "stored" else "Already noted"
    olds = "; ".join(outcome.replaces)
    replaced = f" That replaces: {said_to_user(olds)}" if olds else ""
    return f"{said}: {said_to_user(outcome.fact)}{replaced}\n(record: {outcome.record})"


def _memory_remember(deps: ToolDeps) -> NovaTool:
    async def run(text: str, call: ToolCall) -> str:
        ref = TurnRef(call.user_id, call.thread_id, agent_id=call.agent_id)
        return heard(await deps.services.memory.remember(ref, owners_words(text, call.request)))

    return NovaTool("memory_remember", "Store a fact, preference or decision (input: the statement).", run)


def owners_words(text: str, request: str) -> str:
    """Return the owner's message when the model's input only restates it, else the input.

    For "my dentist is Dr Amara Osei in Headingley" the 1.5B model stored "Dr Amara Osei in Headingley is my
    dentist.", which the rules read as the subject dr_amara_osei/headingley, beside the user/dentist memory the
    turn's own memory write made of the same message: one fact, two memories. In the owner's words both writes
    are the same statement, and the second is merged into the first.
    """
    return request if request.strip() and restates(text, request) else text


def _memory_forget(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return await deps.services.memory.forget(call.user_id, query)

    return NovaTool("memory_forget", "Forget the memory best matching the input (recoverable).", run)


FIRST_CLAUSE_RE = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.:](?:\s|$)")
SUMMARY_CHARS = 110
ROSTER_WORDS = frozenset({"", "*", "all", "any", "every", "everything", "none", "agent", "agents", "list", "roster"})


def summary_of(description: str) -> str:
    """Return an agent description's first clause ("Client relationships"), at most about SUMMARY_CHARS long."""
    head = FIRST_CLAUSE_RE.split(description.strip(), maxsplit=1)[0].strip()
    if len(head) <= SUMMARY_CHARS:
        return head
    aside = head.find(" (")  # "isolation rules (how the current tenant ...)": the words before the aside
    if 30 <= aside <= SUMMARY_CHARS:
        return head[:aside]
    return head[:SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",;") + " …"


def roster_text(roster: Sequence[tuple[str, str]], query: str) -> str:
    """Answer list_agents: the agents a query names in full, else every agent in a phrase, one line per domain.

    The query names agents by id (`erp.fixes`), by domain word (`erp`, `language`) or by any other word or phrase
    found in ids and descriptions; "what can you do" names none of them, and gets the overview.
    """
    q = query.casefold().strip()
    words = set(re.findall(r"[\w.]+", q))
    domains = {i.split(".", 1)[0] for i, _ in roster}
    picked = [(i, d) for i, d in roster if i in words] or [(i, d) for i, d in roster if i.split(".", 1)[0] in words]
    if not picked and words - ROSTER_WORDS:  # "all", "none", "agents": the overview
        by_name = [(i, d) for i, d in roster if any(_stem_match(i.split(".", 1)[-1], w) for w in words)]
        in_text = [(i, d) for i, d in roster if re.search(rf"\b{re.escape(q)}\b", d.casefold())]
        picked = list(dict.fromkeys(by_name + in_text))
    if picked:
        return "\n".join(f"- {i}: {d}" for i, d in picked)
    lines = [f"Nova's {len(roster)} agents, by domain:"]
    for domain in sorted(domains):
        members = [(i, d) for i, d in roster if i.split(".", 1)[0] == domain]
        lines.append(f"- {domain}: " + "; ".join(f"{i} ({summary_of(d)})" for i, d in members))
    return "\n".join(lines)


def _stem_match(name: str, word: str) -> bool:
    """Whether a query word is an agent's name or a form of it ("proofreading" for proofread, "translation")."""
    shared = len(os.path.commonprefix([name, word]))
    return shared == len(name) == len(word) or shared >= min(len(name), 7) >= 5


def _list_agents(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return roster_text(deps.roster, query)

    return NovaTool(
        "list_agents",
        "List Nova's agents by domain with a line each, or in full the ones named (input: agent ids, a domain, or"
        " nothing for all).",
        run,
    )


def _explain_route(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        rows = await deps.services.route_log.recent(user_id=call.user_id, thread_id=call.thread_id or None, limit=3)
        if not rows:
            return "No routing decisions recorded for this conversation yet."
        return json.dumps(rows, default=str, indent=1)

    return NovaTool("explain_route", "Show this conversation's latest routing decisions with scores and reasons.", run)


def _system_health(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        checks = await deps.services.health.checks()
        if not checks:
            return "No health checks are available in this process."
        return "\n".join(f"- {'ok' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}" for c in checks)

    return NovaTool("system_health", "Check database, pgvector, embedder, model endpoint, recent failures.", run)


def _memory_curate(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        ref = TurnRef(call.user_id, call.thread_id, agent_id=call.agent_id)
        outcome = await deps.services.work.start(ref, "memory_curate", {}, "memory curation")
        values = outcome.get("values") or {}
        if outcome.get("interrupts"):
            raised = values.get("conflicts") or []
            count = f"{len(raised)} conflict(s)" if isinstance(raised, list) and raised else "a conflict"
            gate = str(outcome["interrupts"][0].get("id", ""))[:8]
            return (
                f"Curation found {count} it cannot settle alone; the first waits for your decision on thread"
                f" {outcome['thread_id']} (gate {gate}): `nova reviews show {outcome['thread_id']}` (or the Reviews"
                " page)."
            )
        return "Curation found no conflicting memories to settle."

    return NovaTool(
        "memory_curate", "Audit memory for conflicting facts and raise each one for review (no input needed).", run
    )


def _list_reviews(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        items = await deps.services.work.pending_reviews(call.user_id)
        if not items:
            return "Nothing is waiting for your review."
        lines = []
        for item, review in zip(items[:20], pending_of(items[:20]), strict=False):
            value = item["interrupts"][0]["value"] if item.get("interrupts") else {}
            action = value.get("action_request", {}).get("action", "?") if isinstance(value, dict) else "question"
            lines.append(f"- {review.thread_id} [{item.get('graph_id')}] {action}: {review.title} {gate_line(review)}")
        first = short_ref(str(items[0]["thread_id"]))
        return "\n".join(lines) + (
            f"\nSay here 'approve {first}', 'reject {first} because ...' or 'ignore {first}' (a review by the first"
            f" characters of its id); see one here with 'show {first}', or show and edit it with"
            " `nova reviews show|edit THREAD` or the Reviews page."
        )

    return NovaTool("list_reviews", "List work paused at review gates (input: optional filter word).", run)


def _decide_review(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        pending = pending_of(await deps.services.work.pending_reviews(call.user_id))
        read = read_decision(call.request, pending, call.conversation, call.last_reply)
        if read.review is None or read.decision is None:
            return f"Nothing decided: {read.refusal}." if read.refusal else ""
        review = read.review
        outcome = await deps.services.work.decide(call.user_id, review.thread_id, dict(read.decision), review.gate)
        return decided(str(read.decision["type"]), review, outcome)

    return NovaTool(
        "decide_review",
        "Carry out the approve, reject (with the reason) or ignore that the owner's own message states on one"
        " paused review; the owner's words decide, never this input. Says nothing when the message decides nothing.",
        run,
    )


def _show_review(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        items = await deps.services.work.pending_reviews(call.user_id)
        review = review_to_show(call.request, pending_of(items), call.last_reply)
        if review is None:
            return ""
        item = next(i for i in items if str(i["thread_id"]) == review.thread_id)
        return shown_review(review, item["interrupts"][0].get("value"))

    return NovaTool(
        "show_review",
        "Show the paused review the owner's own message asks to see (its diff or draft in full), by the id it"
        " names; the owner's words decide, never this input. Says nothing when the message asks to see none.",
        run,
        limit=20000,  # the whole diff: a review cut short is no review
    )


def _erp_schema(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return await deps.services.erp.schema(query)

    return NovaTool(
        "erp_schema",
        "The ERP's Django models: fields, types, relations, tenant/branch keys (input: model or app names, or empty).",
        run,
    )


def _erp_sql(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return await deps.services.erp.query(call.user_id, query)

    return NovaTool(
        "erp_sql",
        "Run one read-only SELECT on the ERP database (Django table names); it is scoped to your tenant and branch"
        " automatically and refused if it cannot be proven safe (input: the SQL).",
        run,
    )


def _erp_tenancy(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return await deps.services.erp.tenancy(query)

    return NovaTool(
        "erp_tenancy",
        "Audit the ERP code for querysets and raw SQL missing a tenant or branch filter (input: a file, a model,"
        " or empty for all).",
        run,
    )


def _erp_issues(deps: ToolDeps) -> NovaTool:
    async def run(query: str, call: ToolCall) -> str:
        return await deps.services.erp.issues(query)

    return NovaTool("erp_issues", "The ERP's open issues (input: an issue number to show one, or empty to list).", run)


TOOLS: dict[str, Callable[[ToolDeps], NovaTool]] = {
    "erp_schema": _erp_schema,
    "erp_sql": _erp_sql,
    "erp_tenancy": _erp_tenancy,
    "erp_issues": _erp_issues,
    "memory_curate": _memory_curate,
    "list_reviews": _list_reviews,
    "decide_review": _decide_review,
    "show_review": _show_review,
    "memory_search": _memory_search,
    "memory_remember": _memory_remember,
    "memory_forget": _memory_forget,
    "list_agents": _list_agents,
    "explain_route": _explain_route,
    "system_health": _system_health,
}


def build_tools(names: Sequence[str], deps: ToolDeps) -> list[NovaTool]:
    """Instantiate the named tools."""
    return [TOOLS[name](deps) for name in names]
