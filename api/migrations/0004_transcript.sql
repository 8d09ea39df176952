-- The full transcript of long threads: messages moved out of the checkpointed state by compaction.
CREATE TABLE nova_transcript (
    thread_id text NOT NULL,
    seq bigserial NOT NULL,
    message_id text,
    role text NOT NULL,
    agent text,
    content text NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, seq)
);
CREATE UNIQUE INDEX nova_transcript_message ON nova_transcript (thread_id, message_id) WHERE message_id IS NOT NULL;
