"""Long-term memory on Postgres + pgvector: write path, read path, explicit operations and curation.

Write path (`observe`, after the reply): an extractor proposes candidates, `triage` puts each in core,
archive or discarded with a reason (secrets are refused outright), then the store merges exact and near
duplicates into the existing row and lets a candidate about the same subject with a different value
supersede the active memory: the old row stays, marked `superseded` and linked by `superseded_by`, and is
never recalled again.

Read path (`recall`, before routing): the core profile (user namespace, highest value first, within
`core_budget_tokens`), the current project's context pack (its core memories, within
`project_budget_tokens`), then the top archive matches for the request ranked by similarity x recency x
use. Superseded and discarded memories are excluded in SQL. Tokens are estimated as characters / 4.

Every query filters on the user id the caller authenticated; nothing in a message chooses the user.
Namespaces (`user`, `project:<slug>`, `agent:<id>`) sub-divide one user's memories.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from nodes.embeddings import Embedder
from nodes.memory_admin import MemoryAdmin
from nodes.memory_extract import Extractor, ModelExtractor
from nodes.memory_records import (
    LIVE,
    ConnectionFactory,
    MemoryInputError,
    MemoryTooLong,
    age_days,
    as_tier,
    estimate_tokens,
    vector_literal,
)
from nodes.memory_rules import (
    MAX_MEMORY_CHARS,
    TOPIC_SUBJECTS,
    Candidate,
    Entities,
    RuleExtractor,
    content_words,
    is_free_subject,
    normalise_subject,
    normalise_text,
    normalise_value,
    same_subject_family,
    triage,
)
from nodes.models import ModelLoader
from nodes.services import TurnRef
from nodes.workspace import Workspace, project_pack
from state.memory import MemoryRef, MemoryTier, Remembered, WriteOutcome

log = logging.getLogger(__name__)

ExtractorChoice = Literal["rules", "model"]
MAX_MESSAGE_CHARS = 20_000
SAME_TURN_S = 300  # a duplicate of a memory this thread stored this recently was stored by the same turn
SLOT_PREFIXES = ("user/pref/", "user/is/", "user/habit/")
SLOT_SIMILARITY = 0.9  # E5 passages: same-topic restatements 0.92-0.97, different topics 0.83-0.87
PRONOUN_HINT_RE = re.compile(r"(?:^|[.!?;,]\s*|\b(?:actually|and|but|oh|so)\s+)(?:it|that|she|he|they)\b", re.I)
SIMILARITY_FLOOR = 0.70  # E5 cosine between unrelated texts sits around 0.70-0.78; ranking stretches above it


# core_value in SQL, so the database returns only the best rows: recency halves its share in ~180 days.
CORE_VALUE_SQL = (
    "confidence * (1 + 0.2 * ln(1 + use_count))"
    " * (0.5 + 0.5 * exp(-extract(epoch FROM now() - coalesce(last_used_at, valid_from)) / 86400 / 260))"
)


def core_value(row: dict[str, Any], now: datetime) -> float:
    """Rank core memories: confidence x use x recency (half-life 180 days); pinned first."""
    if row["pinned"]:
        return 10.0 + float(row["confidence"])
    last = row["last_used_at"] or row["valid_from"]
    recency = 0.5 + 0.5 * math.exp(-age_days(last, now) / 260)
    return float(row["confidence"]) * (1 + 0.2 * math.log1p(int(row["use_count"]))) * recency


def match_score(similarity: float, row: dict[str, Any], now: datetime) -> float:
    """Rank archive matches: similarity (stretched above the E5 floor) x recency x use."""
    stretched = max(0.0, (similarity - SIMILARITY_FLOOR) / (1 - SIMILARITY_FLOOR))
    last = row["last_used_at"] or row["valid_from"]
    recency = 0.8 + 0.2 * math.exp(-age_days(last, now) / 90)
    use = 1 + 0.1 * math.log1p(int(row["use_count"]))
    return stretched * recency * use


class MemoryStore(MemoryAdmin):
    """The Postgres-backed MemoryPort; listing, history, export/import and curation come from MemoryAdmin.

    Args:
        pool: A connection factory (the api/ pool); the store never opens connections itself.
        embed: The embedder; passages are stored in passage mode, requests embedded in query mode.
        models: Chat models, needed only for the model extractor.
        workspace: The owner's projects: names the extractors recognise, and context packs.
        load_packs: Load the workspace's context packs into each user's memory on first use.
        extractor: `rules` (no model) or `model` (structured output, rules as fallback).
        core_budget_tokens: Budget of the core profile in recall (tokens ~ characters / 4).
        project_budget_tokens: Budget of the current project's context pack in recall.
        recall_k: Archive matches returned per recall.
        min_similarity: Cosine below which an archive memory is not considered relevant. On the shipped
            scenarios every question-to-fact pair scores >= 0.806 and the median unrelated pair 0.777.
        near_duplicate: Cosine at or above which two memories about one subject are the same memory.
        stale_days: Core memories unused this long are proposed for demotion by `curate`.
        promote_uses: Archive memories recalled this often are proposed for promotion by `curate`.
        index_threshold: Live memories after which a user gets a partial IVFFlat index.
        probes: IVFFlat lists a recall query scans. At 100k real memories (316 lists), recall@10 against exact
            search and p95: 10 probes 0.86 in 6.0 ms, 20 probes 0.962 in 8.7 ms, 40 probes 0.998 in 13.5 ms
            (bench/memory_recall.py --real --probes 10,20,40); 30 keeps a margin on both.
        agent_scoped: Agent ids whose cards ask for agent memory: their preferences go to `agent:<id>`.
    """

    def __init__(
        self,
        pool: ConnectionFactory,
        embed: Embedder,
        *,
        models: ModelLoader | None = None,
        workspace: Workspace | None = None,
        load_packs: bool = True,
        extractor: ExtractorChoice = "rules",
        core_budget_tokens: int = 400,
        project_budget_tokens: int = 300,
        recall_k: int = 5,
        min_similarity: float = 0.78,
        near_duplicate: float = 0.95,
        stale_days: int = 120,
        promote_uses: int = 5,
        index_threshold: int = 5000,
        probes: int = 30,
        agent_scoped: Iterable[str] = (),
    ) -> None:
        self.pool = pool
        self.embed = embed
        self.workspace = workspace
        self.load_packs = load_packs
        self.entities = Entities.from_workspace(workspace)
        self.rules = RuleExtractor(self.entities)
        if extractor == "model":
            if models is None:
                raise ValueError("the model extractor needs a chat model (models=...)")
            self.extractor: Extractor = ModelExtractor(models, self.entities)
        else:
            self.extractor = self.rules
        self.core_budget_tokens = core_budget_tokens
        self.project_budget_tokens = project_budget_tokens
        self.recall_k = recall_k
        self.min_similarity = min_similarity
        self.near_duplicate = near_duplicate
        self.stale_days = stale_days
        self.promote_uses = promote_uses
        self.index_threshold = index_threshold
        self.probes = probes
        self.agent_scoped = frozenset(agent_scoped)
        self._ready: set[str] = set()
        self._writes: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- background work

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background work (usage counts, index builds) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---------------------------------------------------------------- read path

    async def recall(self, user_id: str, text: str, *, project: str | None = None, qvec: Any = None) -> list[MemoryRef]:
        """Return the core profile, the project's context pack and the archive matches for a request.

        `qvec` is the request's query vector when the caller already has it (the turn embeds once).
        """
        await self.prepare_user(user_id)
        if qvec is None:
            qvec = await self.embed_query(text)
        return await self.recall_vector(user_id, qvec, project=project)

    async def recall_vector(
        self, user_id: str, qvec: Sequence[float] | np.ndarray[Any, Any], *, project: str | None = None
    ) -> list[MemoryRef]:
        """Recall with an already embedded request (query mode)."""
        namespaces = ["user"] + ([f"project:{project}"] if project else [])
        q = vector_literal(qvec)
        # One pipelined round trip: BEGIN, SET LOCAL, both queries, COMMIT.
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            core = conn.cursor(row_factory=dict_row)
            near = conn.cursor(row_factory=dict_row)
            await conn.execute(sql.SQL("SET LOCAL ivfflat.probes = {}").format(sql.Literal(self.probes)))
            await core.execute(
                "SELECT id, namespace, subject, text, tier, pinned, confidence, use_count, last_used_at, valid_from"
                " FROM memories WHERE user_id = %s AND status = 'active' AND tier = 'core' AND namespace = ANY(%s)"
                f" ORDER BY pinned DESC, {CORE_VALUE_SQL} DESC LIMIT %s",
                (user_id, namespaces, self._core_rows_needed()),
                prepare=False,
            )
            await near.execute(*self._nearest_query(user_id, q, max(self.recall_k * 4, 20)), prepare=False)
            core_rows = await core.fetchall()
            near_rows = await near.fetchall()
        now = datetime.now(UTC)
        refs: list[MemoryRef] = []
        taken: set[str] = set()
        budgets = {"user": self.core_budget_tokens}
        if project:
            budgets[f"project:{project}"] = self.project_budget_tokens
        for ns, budget in budgets.items():
            rows = sorted((r for r in core_rows if r["namespace"] == ns), key=lambda r: -core_value(r, now))
            used = 0
            for r in rows:
                cost = estimate_tokens(r["text"])
                if used + cost > budget and not r["pinned"]:
                    continue
                used += cost
                taken.add(str(r["id"]))
                refs.append(
                    MemoryRef(
                        id=str(r["id"]),
                        subject=r["subject"],
                        text=r["text"],
                        tier="core",
                        score=round(core_value(r, now), 4),
                    )
                )
        relevant = [r for r in near_rows if float(r["sim"]) >= self.min_similarity]
        ranked = sorted(relevant, key=lambda r: -match_score(float(r["sim"]), r, now))
        for r in ranked:
            if len(refs) - len(taken) >= self.recall_k:
                break
            if str(r["id"]) in taken:
                continue
            refs.append(
                MemoryRef(
                    id=str(r["id"]),
                    subject=r["subject"],
                    text=r["text"],
                    tier=as_tier(r["tier"]),
                    score=round(match_score(float(r["sim"]), r, now), 4),
                )
            )
        used_ids = [str(r["id"]) for r in relevant[: self.recall_k]]
        if used_ids:
            self._background(self._touch(used_ids))
        return refs

    def _core_rows_needed(self) -> int:
        # A memory costs at least ~4 tokens, so this many rows always fill both budgets.
        return max(50, (self.core_budget_tokens + self.project_budget_tokens) // 4)

    @staticmethod
    def _nearest_query(user_id: str, q: str, limit: int) -> tuple[str, dict[str, Any]]:
        # The WHERE clause repeats the partial index predicate verbatim so the planner can prove it, and the
        # user id is a bound parameter of an unnamed statement, so the planner sees its value.
        return (
            "SELECT id, namespace, subject, text, value, tier, kind, use_count, last_used_at, valid_from,"
            " 1 - (embedding <=> %(q)s::vector) AS sim FROM memories"
            f" WHERE user_id = %(u)s AND {LIVE} ORDER BY embedding <=> %(q)s::vector LIMIT %(n)s",
            {"u": user_id, "q": q, "n": limit},
        )

    async def _nearest(self, cur: Any, user_id: str, q: str, limit: int) -> list[dict[str, Any]]:
        await cur.execute(*self._nearest_query(user_id, q, limit), prepare=False)
        return list(await cur.fetchall())

    async def _touch(self, ids: list[str]) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE memories SET use_count = use_count + 1, last_used_at = now() WHERE id = ANY(%s::uuid[])",
                    (ids,),
                )
        except Exception as exc:  # usage counts are best effort and never fail a turn
            log.warning("could not record memory use: %r", exc)

    async def search(self, user_id: str, query: str, *, limit: int = 8) -> list[MemoryRef]:
        """Search active memories by similarity (core and archive)."""
        qvec = await self.embed_query(query)
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SET LOCAL ivfflat.probes = {}").format(sql.Literal(self.probes)))
            rows = await self._nearest(cur, user_id, vector_literal(qvec), limit)
        return [
            MemoryRef(
                id=str(r["id"]),
                subject=r["subject"],
                text=r["text"],
                tier=as_tier(r["tier"]),
                score=round(float(r["sim"]), 4),
            )
            for r in rows
        ]

    # ---------------------------------------------------------------- write path

    async def observe(self, ref: TurnRef, text: str) -> Remembered:
        """Extract, triage and store memories from a user message; return what each candidate did."""
        if not text.strip():
            return Remembered(())
        if len(text) > MAX_MESSAGE_CHARS:
            return Remembered(
                (WriteOutcome("refused", f"skipped: message longer than {MAX_MESSAGE_CHARS} characters"),)
            )
        await self.prepare_user(ref.user_id)
        if self.extractor is self.rules:
            candidates = self.rules.extract_sync(text, context=await self._thread_context(ref, text))
        else:
            hits = await self.search(ref.user_id, text, limit=8)
            candidates = await self.extractor.extract(text, [f"{h.subject}: {h.text}" for h in hits])
        return Remembered(tuple(await self._apply_all(ref, candidates)))

    async def _thread_context(self, ref: TurnRef, text: str) -> str:
        """Return the thread's latest live memory when the message may lean on it ("it's now ...", "she ...").

        Only a memory from the last 30 minutes: a pronoun refers to what was just said, not to last week.
        """
        if not ref.thread_id or not PRONOUN_HINT_RE.search(text):
            return ""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT text FROM memories WHERE user_id = %s AND thread_id = %s AND {LIVE}"
                " AND created_at > now() - interval '30 minutes' ORDER BY created_at DESC LIMIT 1",
                (ref.user_id, ref.thread_id),
            )
            row = await cur.fetchone()
        return str(row["text"]) if row else ""

    async def remember(self, ref: TurnRef, text: str) -> Remembered:
        """Store an explicit memory (the chat agents' tool); return what each statement of it did."""
        body = text.strip()
        if not body:
            raise MemoryInputError("nothing to remember: the text is empty")
        if len(body) > MAX_MEMORY_CHARS:
            raise MemoryTooLong(
                f"a memory holds at most {MAX_MEMORY_CHARS} characters; this one has {len(body)}. "
                "Split it into separate facts."
            )
        candidates = self.rules.explicit(body)
        candidates = [replace(c, explicit=True, method="explicit") for c in candidates]
        await self.prepare_user(ref.user_id)
        return Remembered(tuple(await self._apply_all(ref, candidates)))

    async def _apply_all(self, ref: TurnRef, candidates: Sequence[Candidate]) -> list[WriteOutcome]:
        keep = [c for c in candidates if c.action == "remember" and triage(c).tier is not None]
        vectors = await self.embed_passages([c.text for c in keep])
        by_text = {c.text: vectors[i] for i, c in enumerate(keep)}
        out = []
        for cand in candidates:
            if cand.action == "forget":
                out.append(await self._forget_candidate(ref.user_id, cand, thread_id=ref.thread_id))
            else:
                out.append(await self._write(ref, cand, by_text.get(cand.text)))
        self._writes[ref.user_id] += len(keep)
        if self._writes[ref.user_id] >= 500:
            self._writes[ref.user_id] = 0
            self._background(self.ensure_index(ref.user_id))
        return out

    async def _write(self, ref: TurnRef, cand: Candidate, vec: np.ndarray[Any, Any] | None) -> WriteOutcome:
        decision = triage(cand)
        if decision.tier is None or vec is None:
            await self._event(ref.user_id, None, "refused", decision.reason, ref.thread_id, {"subject": cand.subject})
            return WriteOutcome("refused", f"not stored: {decision.reason}")
        q = vector_literal(vec)
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (ref.user_id, cand.subject or "")
            )
            text, subject, value = cand.text, cand.subject, cand.value
            if subject is None:
                text, subject, value = await self._resolve_replacement(cur, ref.user_id, cand, q)
                if text != cand.text:
                    q = vector_literal((await self.embed_passages([text]))[0])
            tier = decision.tier
            namespace = self.entities.namespace_for(subject)
            if ref.agent_id and ref.agent_id in self.agent_scoped and cand.kind == "preference":
                namespace = f"agent:{ref.agent_id}"
            if tier == "discarded":
                await self._insert(
                    cur, ref, cand, text, subject, value, namespace, tier, decision.reason, q, decision.confidence
                )
                return WriteOutcome("discarded", f"discarded ({decision.reason}): {text}", text)
            norm = normalise_text(text)
            await cur.execute(
                f"SELECT id, text, tier FROM memories WHERE user_id = %s AND {LIVE} AND norm = %s LIMIT 1",
                (ref.user_id, norm),
            )
            same_text = await cur.fetchone()
            if same_text:
                return await self._merge(cur, ref, same_text, tier, decision.confidence, "exact duplicate")
            await cur.execute(
                "SELECT id, subject, text, value, tier, pinned, 1 - (embedding <=> %s::vector) AS sim FROM memories"
                f" WHERE user_id = %s AND {LIVE} AND (subject = %s OR subject LIKE %s) ORDER BY valid_from DESC",
                (q, ref.user_id, subject, subject.split("/", 1)[0] + "/%"),
                prepare=False,
            )
            entity_rows = list(await cur.fetchall())
            family = [r for r in entity_rows if same_subject_family(r["subject"], subject)]
            exact = [r for r in family if r["subject"] == subject]
            loose = sorted({r["subject"] for r in family} - {subject})
            prior = exact or (family if len(loose) == 1 else [])
            if not prior:
                prior = self._same_slot(entity_rows, subject)
                if prior:
                    subject = prior[0]["subject"]
            if prior and not is_free_subject(subject):
                newest = prior[0]
                if normalise_value(newest["value"] or newest["text"]) == normalise_value(value or text):
                    return await self._merge(cur, ref, newest, tier, decision.confidence, "same value restated")
                if any(r["tier"] == "core" for r in prior):
                    tier = "core"
                pinned = any(r["pinned"] for r in prior)
                new_id = await self._insert(
                    cur,
                    ref,
                    cand,
                    text,
                    subject,
                    value,
                    namespace,
                    tier,
                    decision.reason,
                    q,
                    decision.confidence,
                    pinned=pinned,
                )
                old_ids = [r["id"] for r in prior]
                await cur.execute(
                    "UPDATE memories SET status = 'superseded', superseded_by = %s, superseded_at = now(),"
                    " updated_at = now() WHERE id = ANY(%s)",
                    (new_id, old_ids),
                )
                for r in prior:
                    await self._event(
                        ref.user_id,
                        str(r["id"]),
                        "superseded",
                        f"replaced by {new_id}",
                        ref.thread_id,
                        {"by": str(new_id)},
                        cur=cur,
                    )
                olds = tuple(r["text"] for r in prior)
                record = f"stored in {tier} as {subject}: {text} (replaces: {'; '.join(olds)})"
                return WriteOutcome("stored", record, text, olds)
            near = [r for r in await self._nearest(cur, ref.user_id, q, 3) if float(r["sim"]) >= self.near_duplicate]
            near = [
                r for r in near if r["subject"] == subject or is_free_subject(r["subject"]) or is_free_subject(subject)
            ]
            if near:
                return await self._merge(cur, ref, near[0], tier, decision.confidence, "near duplicate")
            await self._insert(
                cur, ref, cand, text, subject, value, namespace, tier, decision.reason, q, decision.confidence
            )
            return WriteOutcome("stored", f"stored in {tier} as {subject}: {text}", text)

    def _same_slot(self, rows: Sequence[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
        """Find the memory an open-ended statement replaces: "I prefer light mode" after "I prefer dark mode".

        Subjects of first-person slots (`user/pref/...`, `user/is/...`) are made from the value when no
        topic is known (known topics such as `user/pref/spelling` only ever match exactly), so a change of
        value changes the key. Within one slot, a statement this similar
        (cosine >= SLOT_SIMILARITY, above every different-topic pair measured) is about the same thing.
        """
        slot = next((p for p in SLOT_PREFIXES if subject.startswith(p)), None)
        if slot is None or subject in TOPIC_SUBJECTS:
            return []
        same = [
            r
            for r in rows
            if r["subject"].startswith(slot)
            and r["subject"] not in TOPIC_SUBJECTS
            and float(r["sim"]) >= SLOT_SIMILARITY
        ]
        return sorted(same, key=lambda r: -float(r["sim"]))[:1]

    async def _resolve_replacement(
        self, cur: Any, user_id: str, cand: Candidate, q: str
    ) -> tuple[str, str, str | None]:
        """For "switched from A to B": find the active memory that says A, and restate it with B."""
        old = (cand.replaces or "").strip()
        if old:
            await cur.execute(
                "SELECT id, subject, text FROM memories"
                f" WHERE user_id = %s AND {LIVE} AND text ~* %s ORDER BY embedding <=> %s::vector LIMIT 1",
                (user_id, rf"\m{re.escape(old)}\M", q),
                prepare=False,
            )
            row = await cur.fetchone()
            if row and not is_free_subject(row["subject"]):
                new = cand.replacement or cand.value or ""
                text = re.sub(re.escape(old), lambda _: new, row["text"], flags=re.IGNORECASE)
                return text, row["subject"], normalise_value(new)
        words = content_words(cand.text)
        return cand.text, normalise_subject("general/note/" + "_".join(words[:5] or ["misc"])), cand.value

    async def _insert(
        self,
        cur: Any,
        ref: TurnRef,
        cand: Candidate,
        text: str,
        subject: str,
        value: str | None,
        namespace: str,
        tier: MemoryTier,
        reason: str,
        q: str,
        confidence: float,
        *,
        pinned: bool = False,
    ) -> uuid.UUID:
        await cur.execute(
            "INSERT INTO memories (user_id, namespace, text, norm, kind, subject, value, tier, thread_id, message_id,"
            " agent_id, method, confidence, pinned, reason, embedding)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector) RETURNING id",
            (
                ref.user_id,
                namespace,
                text,
                normalise_text(text),
                cand.kind,
                subject,
                value,
                tier,
                ref.thread_id or None,
                ref.message_id,
                ref.agent_id,
                cand.method,
                confidence,
                pinned,
                reason,
                q,
            ),
        )
        row = await cur.fetchone()
        new_id: uuid.UUID = row["id"]
        await self._event(
            ref.user_id,
            str(new_id),
            "created",
            reason,
            ref.thread_id,
            {"tier": tier, "subject": subject, "method": cand.method},
            cur=cur,
        )
        return new_id

    async def _merge(
        self, cur: Any, ref: TurnRef, row: dict[str, Any], tier: MemoryTier, confidence: float, why: str
    ) -> WriteOutcome:
        promote = tier == "core" and row["tier"] == "archive"
        await cur.execute(
            "UPDATE memories SET use_count = use_count + 1, last_used_at = now(), updated_at = now(),"
            " confidence = least(1.0, greatest(confidence, %s) + 0.05),"
            " tier = CASE WHEN %s THEN 'core' ELSE tier END,"
            " reason = CASE WHEN %s THEN 'promoted: restated as a fact about you' ELSE reason END WHERE id = %s"
            f" RETURNING subject, tier, thread_id = %s AND created_at > now() - interval '{SAME_TURN_S} seconds'"
            " AS same_turn",
            (confidence, promote, promote, row["id"], ref.thread_id or None),
        )
        merged = await cur.fetchone()
        await self._event(ref.user_id, str(row["id"]), "merged", why, ref.thread_id, {"promoted": promote}, cur=cur)
        if merged is not None and merged["same_turn"]:
            # Stored from this very message a moment ago (the turn's memory write runs beside the agent's
            # remember call): to the user it is new, so say so, with what it replaced.
            await cur.execute("SELECT text FROM memories WHERE superseded_by = %s ORDER BY valid_from", (row["id"],))
            olds = tuple(r["text"] for r in await cur.fetchall())
            stored = f"stored in {merged['tier']} as {merged['subject']}: {row['text']}"
            record = f"{stored} (replaces: {'; '.join(olds)})" if olds else stored
            return WriteOutcome("stored", record, row["text"], olds)
        record = f"already known ({why}), merged into {str(row['id'])[:8]}: {row['text']}"
        return WriteOutcome("known", record, row["text"])

    # ---------------------------------------------------------------- forgetting

    async def forget(self, user_id: str, query: str) -> str:
        """Discard (recoverably) the memory best matching a query, or the one with that id."""
        query = query.strip()
        if not query:
            raise MemoryInputError("say what to forget")
        if re.fullmatch(r"[0-9a-f-]{8,36}", query):
            record = await self.get(user_id, query)
            await self.discard(user_id, record.id)
            return f"forgotten (recoverable with `nova memory restore {record.id[:8]}`): {record.text}"
        outcome = await self._forget_candidate(user_id, self.rules.forget_query(query), thread_id=None)
        if outcome.kind == "nothing":
            close = [h for h in await self.search(user_id, query, limit=3) if h.score >= self.min_similarity]
            if close:
                listing = "; ".join(f"{h.id[:8]} {h.text}" for h in close)
                return f"{outcome.record}. Closest: {listing} (forget one by its id)"
        return outcome.record

    async def _forget_candidate(self, user_id: str, cand: Candidate, *, thread_id: str | None) -> WriteOutcome:
        rows: list[dict[str, Any]] = []
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if cand.mentions:
                await cur.execute(
                    f"SELECT id, text, subject, value FROM memories WHERE user_id = %s AND {LIVE}"
                    " AND text ~* ALL(%s) ORDER BY created_at DESC LIMIT 5",
                    (user_id, [rf"\m{re.escape(m)}\M" for m in cand.mentions]),
                )
                rows = list(await cur.fetchall())
                if not rows:
                    return WriteOutcome("nothing", f"nothing retired: no memory mentions {' and '.join(cand.mentions)}")
            elif not cand.text:
                if not thread_id:
                    return WriteOutcome("nothing", "nothing forgotten: say what to forget")
                await cur.execute(
                    f"SELECT id, text, subject, value FROM memories WHERE user_id = %s AND thread_id = %s AND {LIVE}"
                    " ORDER BY created_at DESC LIMIT 1",
                    (user_id, thread_id),
                )
                rows = list(await cur.fetchall())
            elif cand.subject:
                await cur.execute(
                    f"SELECT id, text, subject, value FROM memories WHERE user_id = %s AND {LIVE} AND subject = %s",
                    (user_id, cand.subject),
                )
                rows = [r for r in await cur.fetchall() if _value_overlaps(r["value"], cand.value)]
        if not rows and cand.text:
            qvec = await self.embed_query(cand.text)
            async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                near = await self._nearest(cur, user_id, vector_literal(qvec), 5)
            wanted = set(content_words(cand.text))
            for r in near:
                overlap = len(wanted & set(content_words(r["text"]))) / max(1, len(wanted))
                if float(r["sim"]) >= 0.83 and overlap >= 0.5:
                    rows = [r]
                    break
        if not rows:
            return WriteOutcome(
                "nothing", f"nothing forgotten: no memory matches {cand.text!r}" if cand.text else "nothing forgotten"
            )
        reason = "no longer true: " + " and ".join(cand.mentions) if cand.mentions else "forgotten on request"
        for r in rows:
            await self.discard(user_id, str(r["id"]), reason=reason)
        texts = tuple(r["text"] for r in rows)
        return WriteOutcome("forgotten", "forgotten: " + "; ".join(texts), "; ".join(texts))

    # ---------------------------------------------------------------- workspace and index upkeep

    async def prepare_user(self, user_id: str) -> None:
        """Load the workspace's context packs for a user once per process (and once per workspace version)."""
        if user_id in self._ready:
            return
        if self.workspace is not None and self.load_packs:
            await self.load_workspace(user_id, self.workspace)
        self._ready.add(user_id)

    async def load_workspace(self, user_id: str, workspace: Workspace) -> int:
        """Load each project's context pack into project:<slug> (core), once per workspace version."""
        key = f"memory.workspace:{user_id}"
        digest = workspace.digest()
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT value FROM nova_meta WHERE key = %s", (key,))
            row = await cur.fetchone()
        if row and row["value"].get("digest") == digest:
            return 0
        written = 0
        for project in workspace.projects:
            candidates = [
                Candidate(
                    text=text,
                    kind="project",
                    subject=subject,
                    value=normalise_value(text),
                    confidence=1.0,
                    explicit=True,
                    method="workspace",
                )
                for subject, text in project_pack(project)
            ]
            ref = TurnRef(user_id=user_id, thread_id="", agent_id=None)
            results = await self._apply_all(ref, candidates)
            written += sum(r.kind == "stored" for r in results)
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO nova_meta (key, value, updated_at) VALUES (%s, %s, now())"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
                (key, Jsonb({"digest": digest})),
            )
        return written

    # ---------------------------------------------------------------- evaluation helpers

    async def owners(self, ids: Sequence[str]) -> dict[str, str]:
        """Return the owning user of each memory id (for cross-user leakage checks)."""
        if not ids:
            return {}
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT id::text AS id, user_id FROM memories WHERE id = ANY(%s::uuid[])", (list(ids),))
            return {r["id"]: r["user_id"] for r in await cur.fetchall()}

    async def duplicate_stats(self, user_id: str) -> tuple[int, int]:
        """Return (duplicates, live memories): live memories repeating another one exactly or nearly."""
        report = await self.curate(user_id, apply=False)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT count(*) AS n FROM memories WHERE user_id = %s AND {LIVE}", (user_id,))
            row = await cur.fetchone()
        return report.count("duplicate"), int(row["n"]) if row else 0


def _value_overlaps(stored: str | None, wanted: str | None) -> bool:
    if not wanted or not stored:
        return True
    a, b = normalise_value(stored), normalise_value(wanted)
    return a in b or b in a
