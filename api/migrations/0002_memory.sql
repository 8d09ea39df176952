-- Long-term memory (issue 4): memories, their history, and per-user vector indexes.
--
-- Why Nova's own tables and not LangGraph's store (PostgresStore with an index):
-- * Supersession is a link between rows (superseded_by) that must stay queryable both ways: "what replaced
--   this?" and "what did this replace?" (`nova memory history SUBJECT`). The store keeps one JSON value
--   per (namespace, key), so an update overwrites the past, or the past lives in JSON nobody can index.
-- * Tier, status, subject, pin and usage are filtered and sorted on every recall; here they are typed,
--   CHECKed columns with btree indexes instead of JSON paths.
-- * Provenance (thread, message, agent, time, extraction method) answers "where did this come from?"
--   with plain SQL, and curation joins on it.
-- * The user filter must apply before the vector scan. The store searches one shared vector table and
--   filters afterwards; pgvector 0.6 has no iterative index scans, so a filtered HNSW scan returns fewer
--   than k rows, or the wrong ones, when the user's rows are a small share of the table.
--
-- Recall latency at 100k memories per user, with 100k rows of other users present (bench/memory_recall.py,
-- 2 shared cores): an exact scan filtered by user_id takes 140-310 ms p95, far too slow; one HNSW index shared
-- by all users is filtered by user only after the scan (pgvector 0.6 has no iterative index scans), so it
-- returns fewer than k rows or the wrong ones unless ef_search grows with the other users' share (ef_search
-- 200 for recall@10 0.99 when the user owns half the rows, worse as the share shrinks). What measured best is a
-- partial HNSW index per large user (WHERE user_id = '<user>' AND status = 'active' AND tier <> 'discarded'):
-- the scan only ever sees that user's live rows, so filtering loses nothing; recall@10 against exact search
-- 0.967 at ef_search 60 (0.988 at 100), recall p95 13.7 ms at load ~3.5 (26 ms when the box was saturated).
-- It is created when a user passes a row threshold (MemoryStore.ensure_index, recorded in
-- memory_vector_indexes); below it the btree on user_id feeds an exact scan, fast and exact for small users.
-- Recall queries send the user id as a bound parameter of an unnamed statement, so the planner sees its value
-- and proves the partial index predicate.
CREATE TABLE memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    namespace text NOT NULL CHECK (namespace ~ '^(user|project:[a-z0-9][a-z0-9-]*|agent:[a-z0-9][a-z0-9_.-]*)$'),
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2000),
    norm text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('fact', 'preference', 'decision', 'project', 'episode')),
    subject text NOT NULL CHECK (subject ~ '^[a-z0-9][a-z0-9:_.-]*(/[a-z0-9][a-z0-9_.-]*)+$'),
    value text,
    tier text NOT NULL CHECK (tier IN ('core', 'archive', 'discarded')),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'superseded')),
    thread_id text,
    message_id text,
    agent_id text,
    extracted_at timestamptz NOT NULL DEFAULT now(),
    method text NOT NULL,
    confidence real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    valid_from timestamptz NOT NULL DEFAULT now(),
    superseded_by uuid REFERENCES memories (id) ON DELETE SET NULL,
    superseded_at timestamptz,
    last_used_at timestamptz,
    use_count integer NOT NULL DEFAULT 0 CHECK (use_count >= 0),
    pinned boolean NOT NULL DEFAULT false,
    reason text NOT NULL DEFAULT '',
    embedding vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'superseded') = (superseded_at IS NOT NULL))
) WITH (fillfactor = 85);  -- room on the page for HOT updates of use_count / last_used_at

COMMENT ON COLUMN memories.norm IS 'casefolded text: the exact-duplicate key';
COMMENT ON COLUMN memories.value IS 'normalised value of the subject, to tell a restatement from a change';
COMMENT ON COLUMN memories.reason IS 'why triage (or curation, or the user) put the memory in its tier';

-- The core profile and the exact-scan path for small users.
CREATE INDEX memories_user_live ON memories (user_id, tier, namespace) WHERE status = 'active';
-- Supersession lookups and `nova memory history SUBJECT`.
CREATE INDEX memories_user_subject ON memories (user_id, subject, valid_from DESC);
-- Exact-duplicate check.
CREATE INDEX memories_user_norm ON memories (user_id, norm) WHERE status = 'active';
-- Listing and export.
CREATE INDEX memories_user_created ON memories (user_id, created_at DESC);
CREATE INDEX memories_superseded_by ON memories (superseded_by) WHERE superseded_by IS NOT NULL;
CREATE INDEX memories_thread ON memories (user_id, thread_id, created_at DESC);

-- What happened to memories and why (triage refusals included); no FK, so it outlives a purge.
CREATE TABLE memory_events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    memory_id uuid,
    action text NOT NULL,
    reason text NOT NULL DEFAULT '',
    thread_id text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX memory_events_user ON memory_events (user_id, id DESC);
CREATE INDEX memory_events_memory ON memory_events (memory_id) WHERE memory_id IS NOT NULL;

-- Per-user partial HNSW indexes created by MemoryStore.ensure_index.
CREATE TABLE memory_vector_indexes (
    user_id text PRIMARY KEY,
    index_name text NOT NULL UNIQUE,
    rows_at_build integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
