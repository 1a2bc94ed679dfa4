//! Probing from several regions (issue 14, "Regions"). **Status: only the quorum rule exists so far**
//! ([`quorum`]): the pure decision that turns one round of per-region results into a verdict. The probe-only
//! agent process (`lifeline monitor agent`), its per-agent tokens, its on-disk spool, the central ingest and
//! the per-region views are not built yet (see `docs/monitor-ha.md`, "Not done").

pub mod quorum;
