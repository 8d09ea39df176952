-- Nova's own tables beside LangGraph's checkpoint and store tables.
CREATE TABLE nova_meta (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nova_threads (
    thread_id text PRIMARY KEY,
    user_id text NOT NULL,
    title text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nova_threads_user_updated ON nova_threads (user_id, updated_at DESC);

CREATE TABLE routing_log (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    thread_id text NOT NULL,
    text text NOT NULL,
    chosen text NOT NULL,
    method text NOT NULL,
    reason text NOT NULL,
    candidates jsonb NOT NULL,
    fallback text,
    latency_ms real NOT NULL
);
CREATE INDEX routing_log_thread ON routing_log (thread_id, id DESC);
CREATE INDEX routing_log_user ON routing_log (user_id, id DESC);

CREATE TABLE routing_corrections (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    thread_id text,
    text text NOT NULL,
    wrong text,
    correct text NOT NULL
);

CREATE TABLE turn_log (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    thread_id text NOT NULL,
    agent text,
    status text NOT NULL,
    error_node text,
    error_kind text,
    error text,
    duration_ms real NOT NULL
);
CREATE INDEX turn_log_created ON turn_log (created_at DESC);
