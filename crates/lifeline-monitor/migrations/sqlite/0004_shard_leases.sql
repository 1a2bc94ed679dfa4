-- Issue 14: the same tables as the PostgreSQL file of this number. SQLite serves one process: the second
-- replica is refused at start (a live row in `replicas` that is not its own).
CREATE TABLE shard_leases (
    shard      INTEGER PRIMARY KEY,
    owner      TEXT,
    epoch      INTEGER NOT NULL DEFAULT 0,
    expires_ms INTEGER NOT NULL DEFAULT 0
);
WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < 127)
INSERT INTO shard_leases (shard) SELECT x FROM s;

CREATE TABLE replicas (
    replica    TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
