-- Issue 14: targets split into 128 shards (FNV-1a of the target name, src/store/shard.rs), each held by one replica
-- under a lease row. `epoch` grows by one at every acquisition and fences writes: a result or an incident change
-- commits only while its writer's (owner, epoch) is still the row's. `expires_ms` is the database's clock.
CREATE TABLE shard_leases (
    shard      BIGINT PRIMARY KEY,
    owner      TEXT,
    epoch      BIGINT NOT NULL DEFAULT 0,
    expires_ms BIGINT NOT NULL DEFAULT 0
);
INSERT INTO shard_leases (shard) SELECT g FROM generate_series(0, 127) AS g;

-- Live replicas (a heartbeat each ttl/3), for the fair share: ceil(128 / live replicas) shards each.
CREATE TABLE replicas (
    replica    TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);

