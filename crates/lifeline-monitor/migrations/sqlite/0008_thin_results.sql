-- Issue 14 (storage): raw results thinned once their hour is rolled up (src/store/rollup.rs). The PostgreSQL
-- file of the same number drops `results.id` (read by nothing) and makes the time index a BRIN index; SQLite
-- cannot drop a primary-key column, so the table is rebuilt with the same columns as PostgreSQL's, and keeps a
-- B-tree on the time (SQLite has no BRIN).
CREATE TABLE results_new (
    target_id        INTEGER NOT NULL,
    ts_ms            INTEGER NOT NULL,
    verdict          TEXT    NOT NULL,
    up               INTEGER NOT NULL,
    maintenance      INTEGER NOT NULL,
    reason           TEXT,
    message          TEXT,
    era              TEXT,
    protocol_version TEXT,
    server_version   TEXT,
    tools_count      INTEGER,
    schema_hash      TEXT,
    latency_ms       REAL,
    timings          TEXT,
    tls_days_left    INTEGER,
    tls_not_after_ms INTEGER,
    steps            TEXT,
    epoch            BIGINT
);
INSERT INTO results_new (target_id, ts_ms, verdict, up, maintenance, reason, message, era, protocol_version,
    server_version, tools_count, schema_hash, latency_ms, timings, tls_days_left, tls_not_after_ms, steps, epoch)
SELECT target_id, ts_ms, verdict, up, maintenance, reason, message, era, protocol_version, server_version,
    tools_count, schema_hash, latency_ms, timings, tls_days_left, tls_not_after_ms, steps, epoch
FROM results ORDER BY id;
DROP TABLE results;
ALTER TABLE results_new RENAME TO results;
CREATE INDEX results_target_ts ON results (target_id, ts_ms);
CREATE INDEX results_ts ON results (ts_ms);

-- The mean phase timings of a target's usable probes per rolled-up hour (the status page's phase chart), kept
-- `retention.raw` like the raw results they replace.
CREATE TABLE phase_hours (
    target_id INTEGER NOT NULL,
    hour      INTEGER NOT NULL,
    probes    INTEGER NOT NULL,
    timings   TEXT    NOT NULL,
    PRIMARY KEY (target_id, hour)
);
