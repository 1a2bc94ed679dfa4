-- Lifeline monitor schema, SQLite dialect. The PostgreSQL file of the same number creates the same tables and
-- columns; only the types differ (INTEGER/REAL/BLOB here, BIGINT/DOUBLE PRECISION/BYTEA there).
-- Times are Unix milliseconds (`*_ms`), days and hours are counted from the Unix epoch (UTC).

CREATE TABLE targets (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT    NOT NULL UNIQUE,
    url                   TEXT    NOT NULL,
    active                INTEGER NOT NULL DEFAULT 1,
    created_ms            INTEGER NOT NULL,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    consecutive_successes INTEGER NOT NULL DEFAULT 0,
    open_incident_id      INTEGER,
    last_checked_ms       INTEGER,
    last_verdict          TEXT,
    last_reason           TEXT,
    last_message          TEXT,
    last_latency_ms       REAL,
    era                   TEXT,
    protocol_version      TEXT,
    server_name           TEXT,
    server_version        TEXT,
    tools_count           INTEGER,
    schema_hash           TEXT,
    tools_json            TEXT,
    tls_not_after_ms      INTEGER,
    tls_days_left         INTEGER,
    cert_warned_days      INTEGER
);

-- Raw results, kept `retention.raw` (48 h by default).
CREATE TABLE results (
    id               INTEGER PRIMARY KEY,
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
    tls_not_after_ms INTEGER
);
CREATE INDEX results_target_ts ON results (target_id, ts_ms);
CREATE INDEX results_ts ON results (ts_ms);

-- One row per target and day: the day's counts and latency histogram, and its 24 hourly buckets packed in
-- `hours` (NULL once past `retention.hourly`).
CREATE TABLE rollup_day (
    day           INTEGER NOT NULL,
    target_id     INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    up            INTEGER NOT NULL,
    healthy       INTEGER NOT NULL,
    degraded      INTEGER NOT NULL,
    auth_required INTEGER NOT NULL,
    unhealthy     INTEGER NOT NULL,
    hist          BLOB    NOT NULL,
    hours         BLOB,
    PRIMARY KEY (day, target_id)
) WITHOUT ROWID;
CREATE INDEX rollup_day_target ON rollup_day (target_id, day);

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id        INTEGER NOT NULL,
    opened_ms        INTEGER NOT NULL,
    resolved_ms      INTEGER,
    reason           TEXT,
    message          TEXT,
    last_notified_ms INTEGER NOT NULL,
    reminders        INTEGER NOT NULL DEFAULT 0
);
-- At most one open incident per target, whatever the number of replicas.
CREATE UNIQUE INDEX incidents_one_open ON incidents (target_id) WHERE resolved_ms IS NULL;
CREATE INDEX incidents_opened ON incidents (opened_ms);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id INTEGER NOT NULL,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    severity  TEXT    NOT NULL,
    summary   TEXT    NOT NULL,
    details   TEXT    NOT NULL
);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_target_ts ON events (target_id, ts_ms);

-- Alert sends (an outbox): inserted in the transaction that opens/resolves the incident, unique per
-- (incident, kind, seq, provider), claimed by one replica, marked sent once.
CREATE TABLE alert_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      INTEGER NOT NULL,
    target_id        INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    provider         TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    due_ms           INTEGER NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claimed_until_ms INTEGER,
    last_error       TEXT,
    created_ms       INTEGER NOT NULL,
    sent_ms          INTEGER,
    UNIQUE (incident_id, kind, seq, provider)
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, due_ms);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL
);

CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
