-- Issue 14 (Regions): the results probe agents push (`POST /api/v1/agent/results`), one row per target,
-- region, probe time and attempt. The key makes a re-sent push (an ack lost in a partition) idempotent.
CREATE TABLE region_results (
    target_id   BIGINT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    region      TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    probed_ms   BIGINT  NOT NULL,
    received_ms BIGINT  NOT NULL,
    attempt     BIGINT  NOT NULL,
    up          BIGINT  NOT NULL,
    latency_ms  BIGINT  NOT NULL,
    error       TEXT,
    PRIMARY KEY (target_id, region, probed_ms, attempt)
);
