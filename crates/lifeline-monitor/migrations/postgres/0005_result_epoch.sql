-- Issue 14: the shard epoch a result was written under (NULL for results of releases before shards), so the
-- fencing is auditable: no result of a former holder carries its old epoch after the takeover.
ALTER TABLE results ADD COLUMN epoch BIGINT;
