//! Probing from several regions (issue 14, "Regions"; `docs/monitor-ha.md` §Regions). Built so far: the
//! quorum rule ([`quorum`]), agent tokens ([`token`]: SHA-256 files, revocable, two for a rotation), the
//! agents' API under the web server ([`api`]: assignments and result pushes), and the central board of
//! per-region results and agent liveness ([`board`], in memory). Not built yet: the `lifeline monitor
//! agent` process with its disk spool, storing region results, paging on the verdicts (see "Not done").

pub mod api;
pub mod board;
pub mod evaluate;
pub mod metrics;
pub mod quorum;
pub mod run;
pub mod spool;
pub mod token;

pub use board::{AgentResult, AgentSeen, Board, RegionResult};
