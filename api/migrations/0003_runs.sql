-- Runs of the HTTP API. One running run per thread across every worker process (partial unique index);
-- creation is serialised per thread with an advisory transaction lock; workers heartbeat their runs so a
-- run whose worker died is found and its thread freed.
ALTER TABLE nova_threads ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'idle'
    CHECK (status IN ('idle', 'busy', 'interrupted', 'error'));
CREATE INDEX IF NOT EXISTS nova_threads_user_status ON nova_threads (user_id, status);

CREATE TABLE nova_runs (
    run_id text PRIMARY KEY,
    seq bigserial NOT NULL,
    thread_id text NOT NULL REFERENCES nova_threads (thread_id) ON DELETE CASCADE,
    assistant_id text NOT NULL,
    graph_id text NOT NULL,
    user_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'success', 'error', 'interrupted', 'timeout')),
    multitask_strategy text NOT NULL DEFAULT 'reject'
        CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt', 'rollback')),
    kwargs jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    error jsonb,
    cancel_action text CHECK (cancel_action IN ('interrupt', 'rollback')),
    worker_host text,
    worker_pid integer,
    heartbeat_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    ended_at timestamptz
);
CREATE UNIQUE INDEX nova_runs_one_running_per_thread ON nova_runs (thread_id) WHERE status = 'running';
CREATE INDEX nova_runs_thread_seq ON nova_runs (thread_id, seq DESC);
CREATE INDEX nova_runs_active ON nova_runs (status, heartbeat_at) WHERE status IN ('pending', 'running');
