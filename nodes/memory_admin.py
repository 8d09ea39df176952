"""Explicit memory operations: list, show, history, pin, discard, purge, restore, export/import, curate, indexes.

`MemoryAdmin` is the base of `nodes.memory.MemoryStore`; it holds what `nova memory ...` and the curator need
and nothing of the per-turn read and write paths.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from nodes.embeddings import Embedder, embed_off_loop, passage_matrix, query_matrix
from nodes.memory_records import (
    COLUMNS,
    LIVE,
    Conflict,
    ConnectionFactory,
    CurationReport,
    Finding,
    ImportFailed,
    ImportReport,
    MemoryDetail,
    MemoryExport,
    MemoryInputError,
    MemoryRecord,
    MemoryTooLong,
    UnknownMemory,
    UnknownSubject,
    age_days,
    as_aware,
    index_lists,
    vector_literal,
)
from nodes.memory_rules import (
    MAX_MEMORY_CHARS,
    is_free_subject,
    normalise_text,
    normalise_value,
    same_subject_family,
)
from state.memory import MemoryTier

log = logging.getLogger(__name__)


class MemoryAdmin:
    """Operations on stored memories by id, subject or user; every one is scoped to the caller's user id."""

    pool: ConnectionFactory
    embed: Embedder
    near_duplicate: float
    stale_days: int
    promote_uses: int
    index_threshold: int

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """Embed stored texts (passage mode) off the event loop."""
        if not texts:
            return np.zeros((0, self.embed.dim), dtype=np.float32)
        return await embed_off_loop(passage_matrix, self.embed, list(texts))

    async def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        """Embed a request (query mode) off the event loop."""
        matrix = await embed_off_loop(query_matrix, self.embed, [text])
        row: np.ndarray[Any, Any] = matrix[0]
        return row

    async def _event(
        self,
        user_id: str,
        memory_id: str | None,
        action: str,
        reason: str,
        thread_id: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        cur: Any = None,
    ) -> None:
        query = (
            "INSERT INTO memory_events (user_id, memory_id, action, reason, thread_id, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        )
        params = (user_id, memory_id, action, reason, thread_id or None, Jsonb(detail or {}))
        if cur is not None:
            await cur.execute(query, params)
            return
        async with self.pool.connection() as conn:
            await conn.execute(query, params)

    # ---------------------------------------------------------------- explicit operations

    async def get(self, user_id: str, memory_id: str) -> MemoryRecord:
        """Return one of the user's memories by id or unique id prefix (8+ characters)."""
        key = memory_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f-]{4,36}", key):
            raise UnknownMemory(f"{memory_id!r} is not a memory id; see `nova memory list`")
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND id::text LIKE %s LIMIT 2",
                (user_id, key + "%"),
            )
            rows = await cur.fetchall()
        if not rows:
            raise UnknownMemory(f"no memory {memory_id!r}; see `nova memory list --all`")
        if len(rows) > 1:
            raise UnknownMemory(f"{memory_id!r} matches several memories; give more of the id")
        return MemoryRecord.from_row(rows[0])

    async def list_memories(
        self,
        user_id: str,
        *,
        namespace: str | None = None,
        tier: MemoryTier | None = None,
        subject: str | None = None,
        include_inactive: bool = False,
        limit: int = 50,
    ) -> list[MemoryRecord]:
        """Return the user's memories, newest first (active and not discarded unless `include_inactive`)."""
        where = ["user_id = %s"]
        params: list[Any] = [user_id]
        if not include_inactive:
            where.append(LIVE)
        if namespace:
            where.append("namespace = %s")
            params.append(namespace)
        if tier:
            where.append("tier = %s")
            params.append(tier)
        if subject:
            where.append("subject LIKE %s")
            prefix = subject.rstrip("*").replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
            params.append(prefix + "%")
        params.append(limit)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT %s",
                params,
            )
            return [MemoryRecord.from_row(r) for r in await cur.fetchall()]

    async def counts(self, user_id: str) -> dict[str, int]:
        """Return how many memories a user has: live core and archive, superseded, discarded, and in all."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT count(*) FILTER (WHERE status = 'active' AND tier = 'core') AS core,"
                " count(*) FILTER (WHERE status = 'active' AND tier = 'archive') AS archive,"
                " count(*) FILTER (WHERE status = 'superseded' AND tier <> 'discarded') AS superseded,"
                " count(*) FILTER (WHERE tier = 'discarded') AS discarded, count(*) AS total"
                " FROM memories WHERE user_id = %s",
                (user_id,),
            )
            row = await cur.fetchone()
        return {k: int(v) for k, v in (row or {}).items()}

    async def show(self, user_id: str, memory_id: str) -> MemoryDetail:
        """Return a memory with its supersession links and its events."""
        record = await self.get(user_id, memory_id)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND superseded_by = %s ORDER BY valid_from",
                (user_id, record.id),
            )
            replaced = [MemoryRecord.from_row(r) for r in await cur.fetchall()]
            replaced_by = None
            if record.superseded_by:
                await cur.execute(
                    f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND id = %s", (user_id, record.superseded_by)
                )
                row = await cur.fetchone()
                replaced_by = MemoryRecord.from_row(row) if row else None
            await cur.execute(
                "SELECT created_at, action, reason, thread_id, detail FROM memory_events"
                " WHERE user_id = %s AND memory_id = %s ORDER BY id",
                (user_id, record.id),
            )
            events = list(await cur.fetchall())
        return MemoryDetail(record, replaced, replaced_by, events)

    async def history(self, user_id: str, subject: str) -> list[MemoryRecord]:
        """Return every memory ever stored about a subject, oldest first."""
        key = subject.strip()
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND subject = %s ORDER BY valid_from, created_at",
                (user_id, key),
            )
            rows = await cur.fetchall()
            if rows:
                return [MemoryRecord.from_row(r) for r in rows]
            await cur.execute("SELECT DISTINCT subject FROM memories WHERE user_id = %s", (user_id,))
            known = [r["subject"] for r in await cur.fetchall()]

        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `nova memory list` for subjects"
        raise UnknownSubject(f"no memory has subject {key!r}{hint}")

    async def pin(self, user_id: str, memory_id: str, *, pinned: bool = True) -> MemoryRecord:
        """Pin a memory (always in the core profile) or unpin it."""
        record = await self.get(user_id, memory_id)
        if pinned and (record.status != "active" or record.tier == "discarded"):
            raise MemoryInputError(f"memory {record.id[:8]} is {record.status}/{record.tier}; restore it first")
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE memories SET pinned = %s, tier = CASE WHEN %s THEN 'core' ELSE tier END, updated_at = now()"
                " WHERE id = %s",
                (pinned, pinned, record.id),
            )
        await self._event(user_id, record.id, "pinned" if pinned else "unpinned", "by the user")
        return await self.get(user_id, record.id)

    async def discard(self, user_id: str, memory_id: str, *, reason: str = "forgotten on request") -> MemoryRecord:
        """Move a memory to the discarded tier (recoverable with `restore`)."""
        record = await self.get(user_id, memory_id)
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE memories SET tier = 'discarded', pinned = false, reason = %s, updated_at = now() WHERE id = %s",
                (reason, record.id),
            )
        await self._event(user_id, record.id, "discarded", reason, detail={"previous_tier": record.tier})
        return await self.get(user_id, record.id)

    async def purge(self, user_id: str, memory_id: str) -> str:
        """Delete a memory for good; its events keep the id and action, not the text."""
        record = await self.get(user_id, memory_id)
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM memories WHERE id = %s AND user_id = %s", (record.id, user_id))
        await self._event(user_id, record.id, "purged", "deleted by the user")
        return record.id

    async def restore(self, user_id: str, memory_id: str) -> MemoryRecord:
        """Undo a discard, or reinstate a superseded memory over the one that replaced it."""
        record = await self.get(user_id, memory_id)
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            if record.tier == "discarded":
                await cur.execute(
                    "SELECT detail FROM memory_events WHERE memory_id = %s AND action = 'discarded'"
                    " ORDER BY id DESC LIMIT 1",
                    (record.id,),
                )
                row = await cur.fetchone()
                previous = (row["detail"] or {}).get("previous_tier") if row else None
                tier = previous if previous in ("core", "archive") else "archive"
                await cur.execute(
                    "UPDATE memories SET tier = %s, reason = 'restored by the user', updated_at = now() WHERE id = %s",
                    (tier, record.id),
                )
            elif record.status == "superseded":
                await cur.execute(
                    "UPDATE memories SET status = 'superseded', superseded_by = %s, superseded_at = now(),"
                    f" updated_at = now() WHERE user_id = %s AND subject = %s AND {LIVE} AND id <> %s",
                    (record.id, user_id, record.subject, record.id),
                )
                await cur.execute(
                    "UPDATE memories SET status = 'active', superseded_by = NULL, superseded_at = NULL,"
                    " valid_from = now(), reason = 'reinstated by the user', updated_at = now() WHERE id = %s",
                    (record.id,),
                )
            else:
                raise MemoryInputError(f"memory {record.id[:8]} is already active")
            await self._event(user_id, record.id, "restored", "by the user", cur=cur)
        return await self.get(user_id, record.id)

    # ---------------------------------------------------------------- export / import

    async def export_lines(self, user_id: str) -> list[str]:
        """Return all the user's memories (history included) as JSON lines, oldest first."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {COLUMNS} FROM memories WHERE user_id = %s ORDER BY created_at, id", (user_id,))
            rows = await cur.fetchall()
        lines = []
        for r in rows:
            data = {k: r[k] for k in MemoryExport.model_fields}
            lines.append(MemoryExport.model_validate(data).model_dump_json())
        return lines

    async def import_lines(self, user_id: str, lines: Iterable[str]) -> ImportReport:
        """Import JSON lines into the user's memory in one transaction: all of it, or nothing.

        Records keep their ids, history links and provenance; ids already held by this user are skipped
        (re-importing is harmless), ids held by another user get fresh ones.
        """
        records: list[tuple[int, MemoryExport]] = []
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ImportFailed(
                    f"line {n}: not valid JSON ({exc.msg}, column {exc.colno}); nothing imported"
                ) from exc
            try:
                records.append((n, MemoryExport.model_validate(data)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                raise ImportFailed(f"line {n}: {where}: {first['msg']}; nothing imported") from exc
        seen: dict[uuid.UUID, int] = {}
        for n, rec in records:
            if rec.id in seen:
                raise ImportFailed(f"line {n}: id {rec.id} already appears on line {seen[rec.id]}; nothing imported")
            seen[rec.id] = n
        vectors = await self.embed_passages([rec.text for _, rec in records])
        created = skipped = 0
        try:
            async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT id, user_id FROM memories WHERE id = ANY(%s)", ([rec.id for _, rec in records],)
                )
                owners = {r["id"]: r["user_id"] for r in await cur.fetchall()}
                mapping: dict[uuid.UUID, uuid.UUID] = {}
                for i, (_n, rec) in enumerate(records):
                    if owners.get(rec.id) == user_id:
                        mapping[rec.id] = rec.id
                        skipped += 1
                        continue
                    new_id = rec.id if rec.id not in owners else uuid.uuid4()
                    mapping[rec.id] = new_id
                    await cur.execute(
                        "INSERT INTO memories (id, user_id, namespace, text, norm, kind, subject, value, tier, status,"
                        " thread_id, message_id, agent_id, extracted_at, method, confidence, valid_from, superseded_at,"
                        " last_used_at, use_count, pinned, reason, created_at, embedding) VALUES (%s, %s, %s, %s, %s,"
                        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector)",
                        (
                            new_id,
                            user_id,
                            rec.namespace,
                            rec.text,
                            normalise_text(rec.text),
                            rec.kind,
                            rec.subject,
                            rec.value,
                            rec.tier,
                            rec.status,
                            rec.thread_id,
                            rec.message_id,
                            rec.agent_id,
                            rec.extracted_at,
                            rec.method,
                            rec.confidence,
                            rec.valid_from,
                            rec.superseded_at,
                            rec.last_used_at,
                            rec.use_count,
                            rec.pinned,
                            rec.reason,
                            rec.created_at,
                            vector_literal(vectors[i]),
                        ),
                    )
                    created += 1
                for n, rec in records:
                    if rec.superseded_by is None or owners.get(rec.id) == user_id:
                        continue
                    target = mapping.get(rec.superseded_by)
                    if target is None and owners.get(rec.superseded_by) == user_id:
                        target = rec.superseded_by
                    if target is None:
                        raise ImportFailed(
                            f"line {n}: superseded_by {rec.superseded_by} is neither in the file nor in your memory;"
                            " nothing imported"
                        )
                    await cur.execute("UPDATE memories SET superseded_by = %s WHERE id = %s", (target, mapping[rec.id]))
                await self._event(
                    user_id, None, "imported", f"{created} memories imported, {skipped} already present", cur=cur
                )
        except ImportFailed:
            raise
        except Exception as exc:
            raise ImportFailed(f"import failed, nothing imported: {type(exc).__name__}: {exc}") from exc
        await self.ensure_index(user_id)
        return ImportReport(created, skipped)

    # ---------------------------------------------------------------- curation

    async def curate(self, user_id: str, *, apply: bool = False, stale_days: int | None = None) -> CurationReport:
        """Find duplicates, unresolved conflicts, stale core facts and archive facts worth promoting.

        With `apply`, merge duplicates, demote stale core facts and promote used archive facts; conflicts
        are only reported: they need the owner's decision.
        """
        days = self.stale_days if stale_days is None else stale_days
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT id, subject, text, value, tier, kind, pinned, use_count, last_used_at, valid_from, created_at,"
                f" embedding::text AS emb FROM memories WHERE user_id = %s AND {LIVE} ORDER BY created_at LIMIT 5000",
                (user_id,),
            )
            rows = list(await cur.fetchall())
        report = CurationReport()
        if not rows:
            return report
        matrix = np.asarray([json.loads(r["emb"]) for r in rows], dtype=np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
        sims = matrix @ matrix.T
        dropped: set[int] = set()
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                if i in dropped or j in dropped:
                    continue
                a, b = rows[i], rows[j]
                same_norm = normalise_text(a["text"]) == normalise_text(b["text"])
                free = is_free_subject(a["subject"]) or is_free_subject(b["subject"])
                same_value = a["subject"] == b["subject"] and normalise_value(a["value"]) == normalise_value(b["value"])
                if same_norm or ((free or same_value) and sims[i, j] >= self.near_duplicate):
                    keep, drop = (a, b) if (a["pinned"] or not b["pinned"]) else (b, a)
                    dropped.add(j if drop is b else i)
                    report.findings.append(
                        Finding(
                            "duplicate",
                            (str(keep["id"]), str(drop["id"])),
                            keep["subject"],
                            (keep["text"], drop["text"]),
                            f"merge into {str(keep['id'])[:8]}",
                        )
                    )
                elif (a["subject"] != b["subject"] and same_subject_family(a["subject"], b["subject"])) or (
                    a["subject"] == b["subject"] and not is_free_subject(a["subject"])
                ):
                    if normalise_value(a["value"]) != normalise_value(b["value"]):
                        report.findings.append(
                            Finding(
                                "conflict",
                                (str(a["id"]), str(b["id"])),
                                a["subject"],
                                (a["text"], b["text"]),
                                "needs your decision: forget one",
                            )
                        )
        now = datetime.now(UTC)
        cutoff = now - timedelta(days=days)
        for r in rows:
            last = as_aware(r["last_used_at"] or r["valid_from"])
            if r["tier"] == "core" and not r["pinned"] and r["kind"] != "project" and last and last < cutoff:
                report.findings.append(
                    Finding(
                        "stale",
                        (str(r["id"]),),
                        r["subject"],
                        (r["text"],),
                        f"demote to archive: unused for {int(age_days(last, now))} days",
                    )
                )
            elif r["tier"] == "archive" and r["use_count"] >= self.promote_uses and last and last >= cutoff:
                report.findings.append(
                    Finding(
                        "promote",
                        (str(r["id"]),),
                        r["subject"],
                        (r["text"],),
                        f"promote to core: recalled {r['use_count']} times",
                    )
                )
        if apply:
            report.applied = await self._apply_findings(user_id, report.findings, days)
        return report

    async def _apply_findings(self, user_id: str, findings: Sequence[Finding], days: int) -> int:
        applied = 0
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for f in findings:
                if f.kind == "duplicate":
                    keep, drop = f.ids
                    await cur.execute(
                        "UPDATE memories SET use_count = use_count + (SELECT use_count FROM memories WHERE id = %s),"
                        " updated_at = now() WHERE id = %s",
                        (drop, keep),
                    )
                    await cur.execute(
                        "UPDATE memories SET tier = 'discarded', pinned = false, reason = %s, updated_at = now()"
                        " WHERE id = %s AND user_id = %s RETURNING tier",
                        (f"merged into {keep} by curation", drop, user_id),
                    )
                    await self._event(
                        user_id, drop, "discarded", f"duplicate of {keep}", detail={"previous_tier": "archive"}, cur=cur
                    )
                elif f.kind == "stale":
                    await cur.execute(
                        "UPDATE memories SET tier = 'archive', reason = %s, updated_at = now() WHERE id = %s",
                        (f"demoted: unused for over {days} days", f.ids[0]),
                    )
                    await self._event(user_id, f.ids[0], "demoted", f"unused for over {days} days", cur=cur)
                elif f.kind == "promote":
                    await cur.execute(
                        "UPDATE memories SET tier = 'core', reason = 'promoted: recalled often', updated_at = now()"
                        " WHERE id = %s",
                        (f.ids[0],),
                    )
                    await self._event(user_id, f.ids[0], "promoted", "recalled often", cur=cur)
                else:
                    continue
                applied += 1
        return applied

    # ---------------------------------------------------------------- conflicts (the review gate's operations)

    async def conflicts(self, user_id: str) -> list[Conflict]:
        """Return the conflicts curation cannot decide alone, grouped by subject, minus those the owner kept.

        Each conflict suggests keeping the pinned memory, else the newest statement, and superseding the rest.
        """
        report = await self.curate(user_id)
        groups: list[set[str]] = []
        for f in report.findings:
            if f.kind != "conflict":
                continue
            ids = set(f.ids)
            touching = [g for g in groups if g & ids]
            for g in touching:
                ids |= g
                groups.remove(g)
            groups.append(ids)
        if not groups:
            return []
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND id = ANY(%s::uuid[])",
                (user_id, sorted(set().union(*groups))),
            )
            by_id = {str(r["id"]): MemoryRecord.from_row(r) for r in await cur.fetchall()}
            await cur.execute(
                "SELECT DISTINCT detail->'ids' AS ids FROM memory_events"
                " WHERE user_id = %s AND action = 'conflict_kept'",
                (user_id,),
            )
            kept = {frozenset(r["ids"] or ()) for r in await cur.fetchall()}
        out = []
        for ids in groups:
            if frozenset(ids) in kept:
                continue
            records = sorted((by_id[i] for i in ids if i in by_id), key=lambda r: (r.valid_from, r.created_at))
            if len(records) < 2:
                continue
            pinned = [r for r in records if r.pinned]
            if len(pinned) == 1:
                keep, reason = pinned[0], "it is pinned"
            else:
                keep = records[-1]
                reason = f"it is the newest statement (valid from {keep.valid_from:%Y-%m-%d %H:%M})"
            out.append(Conflict(keep.subject, tuple(records), keep.id, reason))
        return sorted(out, key=lambda c: c.subject)

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
        """Settle a conflict without deleting anything; return what happened.

        With `keep`, that memory stays current and the other live ones are superseded by it. With `text`, a
        new memory (method `review`) on the conflict's subject supersedes all of them. Safe to repeat: a
        conflict already settled the same way is reported, not settled twice.
        """
        if (keep is None) == (text is None):
            raise MemoryInputError("say which memory stays current (keep) or give the corrected text, not both")
        body = (text or "").strip()
        if text is not None and not body:
            raise MemoryInputError("the corrected text is empty")
        if len(body) > MAX_MEMORY_CHARS:
            raise MemoryTooLong(f"a memory holds at most {MAX_MEMORY_CHARS} characters; this one has {len(body)}")
        wanted = sorted({str(i) for i in ids})
        if keep is not None and keep not in wanted:
            raise UnknownMemory(f"{keep!r} is not one of the conflicting memories ({', '.join(wanted)})")
        vector = (await self.embed_passages([body]))[0] if body else None
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE user_id = %s AND id = ANY(%s::uuid[]) ORDER BY valid_from"
                " FOR UPDATE",
                (user_id, wanted),
            )
            records = [MemoryRecord.from_row(r) for r in await cur.fetchall()]
            if len(records) != len(wanted):
                missing = sorted(set(wanted) - {r.id for r in records})
                raise UnknownMemory(f"no memory {', '.join(m[:8] for m in missing)}; it was purged or never yours")
            live = [r for r in records if r.status == "active" and r.tier != "discarded"]
            if keep is not None:
                kept = next(r for r in records if r.id == keep)
                if kept not in live:
                    return f"not applied: {keep[:8]} is {kept.status}/{kept.tier} now; run `nova memory curate` again"
                target, new = kept, False
            else:
                superseded_to = {r.superseded_by for r in records}
                replacement = next(iter(superseded_to))
                if not live and len(superseded_to) == 1 and replacement is not None:
                    return f"already resolved: {replacement[:8]} replaced them"
                newest = records[-1]
                await cur.execute(
                    "INSERT INTO memories (user_id, namespace, text, norm, kind, subject, value, tier, thread_id,"
                    " agent_id, method, confidence, pinned, reason, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, 'review', 1.0, %s, %s, %s::vector) RETURNING " + COLUMNS,
                    (
                        user_id,
                        newest.namespace,
                        body,
                        normalise_text(body),
                        newest.kind,
                        newest.subject,
                        normalise_value(body),
                        "core" if any(r.tier == "core" for r in records) else newest.tier,
                        thread_id or None,
                        "memory_curate",
                        any(r.pinned for r in records),
                        reason,
                        vector_literal(vector if vector is not None else []),
                    ),
                )
                row = await cur.fetchone()
                target, new = MemoryRecord.from_row(row), True
                await self._event(
                    user_id, target.id, "created", reason, thread_id, {"corrects": wanted, "method": "review"}, cur=cur
                )
            losers = [r for r in live if r.id != target.id]
            if not losers:
                return f"already resolved: {target.id[:8]} is current ({target.text})"
            await cur.execute(
                "UPDATE memories SET status = 'superseded', superseded_by = %s, superseded_at = now(), reason = %s,"
                " updated_at = now() WHERE id = ANY(%s::uuid[])",
                (target.id, reason, [r.id for r in losers]),
            )
            for r in losers:
                await self._event(
                    user_id,
                    r.id,
                    "superseded",
                    f"replaced by {target.id}: {reason}",
                    thread_id,
                    {"by": target.id},
                    cur=cur,
                )
        olds = "; ".join(r.text for r in losers)
        verb = "stored" if new else "kept"
        return f"{verb} {target.id[:8]} as current: {target.text} (supersedes: {olds})"

    async def note_conflict(
        self, user_id: str, ids: Sequence[str], comment: str, *, thread_id: str | None = None
    ) -> str:
        """Leave a conflict as it is, record the owner's comment on each memory, and stop raising it."""
        wanted = sorted({str(i) for i in ids})
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT id FROM memories WHERE user_id = %s AND id = ANY(%s::uuid[])", (user_id, wanted))
            found = sorted(str(r["id"]) for r in await cur.fetchall())
            if found != wanted:
                raise UnknownMemory("some of the conflicting memories no longer exist; run `nova memory curate` again")
            await cur.execute(
                "SELECT 1 FROM memory_events WHERE user_id = %s AND action = 'conflict_kept' AND detail->'ids' = %s",
                (user_id, Jsonb(wanted)),
            )
            if await cur.fetchone() is None:
                for memory_id in wanted:
                    await self._event(
                        user_id,
                        memory_id,
                        "conflict_kept",
                        comment,
                        thread_id,
                        {"ids": wanted, "comment": comment},
                        cur=cur,
                    )
        return f"left as is ({len(wanted)} memories), comment recorded: {comment}"

    async def ensure_index(self, user_id: str, *, force: bool = False) -> str | None:
        """Give a user with many memories a partial IVFFlat index of their own; return its name.

        IVFFlat, not HNSW: on 100k real embeddings of one user's notes (many near-duplicates: invoices, tickets,
        dated calls) HNSW found 0.57-0.78 of the exact top 10 at ef_search 60-400 (0.69-0.81 with m=32), while
        IVFFlat with sqrt(rows) lists finds 0.96 probing 20 lists and 0.998 probing 40 (bench/memory_recall.py,
        `--real`; HNSW measured on the same vectors outside Nova). Its lists are trained on the rows present at
        build, so the index is rebuilt once the user's live memories have doubled, under a new name, and the old
        one dropped; an index of another kind (HNSW, from earlier versions) is replaced the same way. Returns
        None below `index_threshold` live memories (exact search is fast there) or while another process is
        building the user's index.
        """
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT r.index_name, r.rows_at_build, i.indisvalid AS valid, a.amname AS method"
                " FROM memory_vector_indexes r LEFT JOIN pg_class c ON c.relname = r.index_name"
                " LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_am a ON a.oid = c.relam"
                " WHERE r.user_id = %s",
                (user_id,),
            )
            row = await cur.fetchone()
            await cur.execute(f"SELECT count(*) AS n FROM memories WHERE user_id = %s AND {LIVE}", (user_id,))
            count_row = await cur.fetchone()
            count = int(count_row["n"]) if count_row else 0
            usable = row is not None and row["valid"] and row["method"] == "ivfflat"
            existing = str(row["index_name"]) if usable and row is not None else None  # `is not None` for mypy
            if existing and count < 2 * max(int(row["rows_at_build"]), 1) and not force:
                return existing
            if count < self.index_threshold and not force:
                return existing
            await cur.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS got", (f"memory-index:{user_id}",))
            got = await cur.fetchone()
            if not got or not got["got"]:
                return existing
            lists = index_lists(count)
            name = f"memories_ivf_{hashlib.sha1(user_id.encode()).hexdigest()[:16]}_{lists}"
            try:
                await self._build_index(cur, name, user_id, lists)
                await cur.execute(
                    "INSERT INTO memory_vector_indexes (user_id, index_name, rows_at_build) VALUES (%s, %s, %s)"
                    " ON CONFLICT (user_id) DO UPDATE SET index_name = excluded.index_name,"
                    " rows_at_build = excluded.rows_at_build, created_at = now()",
                    (user_id, name, count),
                )
                if row is not None and row["index_name"] != name:
                    old = sql.Identifier(row["index_name"])
                    await cur.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(old))
                await cur.execute("ANALYZE memories")
            finally:
                await cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"memory-index:{user_id}",))
        log.info("built partial IVFFlat index %s for %s (%d memories, %d lists)", name, user_id, count, lists)
        return name

    async def _build_index(self, cur: Any, name: str, user_id: str, lists: int) -> None:
        ident = sql.Identifier(name)
        await cur.execute(
            "SELECT i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = %s",
            (name,),
        )
        existing = await cur.fetchone()
        if existing and not existing["valid"]:
            await cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(ident))
        await cur.execute("SET statement_timeout = 0")
        await cur.execute("SET maintenance_work_mem = '512MB'")
        try:
            await cur.execute(
                sql.SQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON memories USING ivfflat (embedding vector_cosine_ops)"
                    f" WITH (lists = {{}}) WHERE user_id = {{}} AND {LIVE}"
                ).format(ident, sql.Literal(lists), sql.Literal(user_id))
            )
        except Exception:
            await cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(ident))
            raise
        finally:
            await cur.execute("RESET statement_timeout")
            await cur.execute("RESET maintenance_work_mem")

    async def reembed_all(self, *, batch: int = 64, progress: Callable[[str], None] | None = None) -> int:
        """Re-embed every stored memory with the current embedder (for `nova reindex`); return the count.

        Per-user indexes are dropped first and rebuilt afterwards; the column type follows the embedder's
        dimension.
        """
        say = progress or (lambda _: None)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT user_id, index_name FROM memory_vector_indexes")
            indexed = list(await cur.fetchall())
            await cur.execute(
                "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute"
                " WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
            )
            type_row = await cur.fetchone()
            await cur.execute("SELECT id, text FROM memories ORDER BY id")
            rows = list(await cur.fetchall())
        wanted = f"vector({int(self.embed.dim)})"
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            for r in indexed:
                await cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(r["index_name"])))
            await cur.execute("DELETE FROM memory_vector_indexes")
            if type_row is None or type_row["t"] != wanted:
                await cur.execute("ALTER TABLE memories ALTER COLUMN embedding DROP NOT NULL")
                await cur.execute("UPDATE memories SET embedding = NULL")
                await cur.execute(f"ALTER TABLE memories ALTER COLUMN embedding TYPE {wanted}")
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                vectors = await self.embed_passages([r["text"] for r in chunk])
                await cur.executemany(
                    "UPDATE memories SET embedding = %s::vector WHERE id = %s",
                    [(vector_literal(v), r["id"]) for v, r in zip(vectors, chunk, strict=True)],
                )
                say(f"re-embedded {min(start + batch, len(rows))} of {len(rows)} memories")
            await cur.execute("ALTER TABLE memories ALTER COLUMN embedding SET NOT NULL")
        for r in indexed:
            await self.ensure_index(r["user_id"], force=True)
        return len(rows)
