-- Synthetic transactions (issue 13): a transaction target's result keeps its steps (JSON array of
-- lifeline_mcp::transaction::StepReport: outcome, reason, message, latency per step).
ALTER TABLE results ADD COLUMN steps TEXT;
