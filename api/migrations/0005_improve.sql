-- The self-improvement loop (issue 6): what happened to each proposal, so the next run's selection learns.
-- One row per (proposal, decision): recording is idempotent when a node re-runs after a crash.
CREATE TABLE improve_outcomes (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    proposal_id text NOT NULL,
    target text NOT NULL,
    decision text NOT NULL CHECK (decision IN ('approved', 'edited', 'rejected', 'ignored', 'refused', 'dropped')),
    finding_ids text[] NOT NULL,
    fingerprints text[] NOT NULL,
    comment text NOT NULL DEFAULT '',
    branch text,
    commit_sha text,
    diff text NOT NULL DEFAULT '',
    UNIQUE (proposal_id, decision)
);
CREATE INDEX improve_outcomes_target ON improve_outcomes (target, id);
