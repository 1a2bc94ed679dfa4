-- Issue 14 (storage): raw results thinned once their hour is rolled up, so 90 days of 10,000 targets fit in
-- PostgreSQL under 1 GiB (src/store/rollup.rs, `Store::rollup`).
--
-- `results.id` was read by nothing (rows are found by target and time): dropping it drops its 8 bytes and its
-- primary-key index, about 30 bytes a row. The time index becomes a BRIN index (a few pages for the whole
-- table): rows arrive in time order, and the time-range reads (the rollup of an hour, the uptime tail, the
-- retention delete) read whole ranges of pages anyway.
ALTER TABLE results DROP COLUMN id;
DROP INDEX results_ts;
CREATE INDEX results_ts ON results USING brin (ts_ms);

-- The mean phase timings of a target's usable probes per rolled-up hour (the status page's phase chart), kept
-- `retention.raw` like the raw results they replace. `timings` is a JSON object like `results.timings`, each
-- phase the mean over the `probes` usable probes of the hour that had it.
CREATE TABLE phase_hours (
    target_id BIGINT NOT NULL,
    hour      BIGINT NOT NULL,
    probes    BIGINT NOT NULL,
    timings   TEXT   NOT NULL,
    PRIMARY KEY (target_id, hour)
);
