-- A thread settles in one call: the run's end, the thread's status and the chat turn's record, in the order
-- the worker used to send them as separate statements (the thread's advisory lock first, so every read after
-- it sees runs queued before it). One statement from the worker: one round trip, one commit.
-- A thread's status from its runs: busy while one is active, else interrupted (a gate waits), else error
-- when its last run failed, else idle.
CREATE OR REPLACE FUNCTION nova_settle_thread(
    lock_class integer,
    thread text,
    interrupted boolean,
    run text DEFAULT NULL,
    run_status text DEFAULT NULL,
    run_error jsonb DEFAULT NULL,
    turn jsonb DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    settled text;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(thread));
    IF run IS NOT NULL THEN
        UPDATE nova_runs r SET status = run_status, error = run_error, ended_at = now(), updated_at = now()
        WHERE r.run_id = run;
    END IF;
    UPDATE nova_threads t SET status = CASE
        WHEN EXISTS (SELECT 1 FROM nova_runs r WHERE r.thread_id = thread AND r.status IN ('pending', 'running'))
            THEN 'busy'
        WHEN interrupted THEN 'interrupted'
        WHEN (SELECT r.status FROM nova_runs r WHERE r.thread_id = thread AND r.status NOT IN ('pending', 'running')
            ORDER BY r.seq DESC LIMIT 1) IN ('error', 'timeout') THEN 'error'
        ELSE 'idle' END, updated_at = now()
    WHERE t.thread_id = thread
    RETURNING t.status INTO settled;
    IF turn IS NOT NULL THEN
        INSERT INTO turn_log (user_id, thread_id, agent, status, error_node, error_kind, error, duration_ms)
        VALUES (turn->>'user_id', thread, turn->>'agent', turn->>'status', turn->'error'->>'node',
            turn->'error'->>'kind', turn->'error'->>'message', (turn->>'duration_ms')::real);
    END IF;
    RETURN settled;
END
$$;
