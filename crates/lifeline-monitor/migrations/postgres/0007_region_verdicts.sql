-- Issue 14 (Regions): what the shard holder needs to judge rounds from the store. Each region result keeps the
-- probe's reason label and its tool-schema hash (compared across regions: a divergence is its own event), and
-- the recent window of every target is read by probe time (the fleet check on the holder of shard 0).
ALTER TABLE region_results ADD COLUMN reason TEXT;
ALTER TABLE region_results ADD COLUMN schema_hash TEXT;
CREATE INDEX region_results_probed ON region_results (probed_ms);
