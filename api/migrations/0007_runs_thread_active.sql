-- "Does this thread have an active run?" is asked twice a turn (starting a run, settling the thread). Without
-- an index matching it, the plan a pooled connection caches for it (generic, chosen while nova_runs was small)
-- walks nova_runs_thread_seq and filters every run the thread ever had, so a long thread's turns slowed
-- until the next ANALYZE. This index holds only the active runs, a handful at most.
CREATE INDEX IF NOT EXISTS nova_runs_thread_active ON nova_runs (thread_id) WHERE status IN ('pending', 'running');
