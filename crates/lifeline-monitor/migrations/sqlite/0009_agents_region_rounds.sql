-- Issue 14 (Regions): each probe agent's liveness, written by whichever replica receives the agent's pull or
-- push (one upsert per request, src/store/agents.rs), so every replica serves the same `GET /api/v1/agents`
-- and agent metrics. Times only move forward (a late write never moves one back) and counters only add, in
-- the upsert itself: no read-modify-write between replicas.
--
-- `lag_ms` is the receive time minus the newest probe time of the latest push that carried results.
-- `minute_ms` is the start (Unix ms, a multiple of 60,000) of the newest clock minute in which results were
-- stored; `minute_results` counts that minute's, `prev_minute_results` the minute's before it (the API's
-- results-per-minute estimate reads both).
CREATE TABLE agents (
    name                TEXT PRIMARY KEY,
    region              TEXT   NOT NULL,
    last_pull_ms        BIGINT,
    last_push_ms        BIGINT,
    lag_ms              BIGINT,
    results_total       BIGINT NOT NULL DEFAULT 0,
    minute_ms           BIGINT NOT NULL DEFAULT 0,
    minute_results      BIGINT NOT NULL DEFAULT 0,
    prev_minute_results BIGINT NOT NULL DEFAULT 0
);

-- Issue 14 (Regions): each multi-region target's latest judged round, written by the holder of the target's
-- shard (fenced on its epoch: a write of a former holder changes nothing) as it judges each round, so the
-- fleet check on the holder of shard 0 reads one row per target instead of every region result of the recent
-- rounds. `verdict` is `up`, `down`, `regional` or `unknown`; `reporting` the regions that reported;
-- `hashes` the regions' latest tool-schema hashes up to that round (a JSON object region → hash), NULL when
-- fewer than two regions reported one.
CREATE TABLE region_rounds (
    target_id INTEGER PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    start_ms  BIGINT NOT NULL,
    verdict   TEXT   NOT NULL,
    reporting BIGINT NOT NULL,
    hashes    TEXT,
    epoch     BIGINT NOT NULL
);
