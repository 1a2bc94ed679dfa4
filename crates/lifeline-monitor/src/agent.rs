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

/// Tests: the central side's web state for the configuration `yaml`, on a SQLite file in `dir`.
#[cfg(test)]
pub(crate) async fn central_for_tests(
    yaml: &str,
    dir: &std::path::Path,
) -> std::sync::Arc<crate::web::AppState> {
    let config = crate::Config::from_yaml(yaml, &|_| None).unwrap();
    let store = crate::store::Store::connect(&format!("sqlite://{}", dir.join("m.db").display()))
        .await
        .unwrap();
    let targets: Vec<(String, String)> = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.display_url()))
        .collect();
    store
        .sync_targets(&targets, crate::scheduler::now_ms())
        .await
        .unwrap();
    std::sync::Arc::new(crate::web::AppState {
        snapshot: Default::default(),
        store,
        metrics: std::sync::Arc::new(crate::metrics::Metrics::new()),
        config: std::sync::Arc::new(config),
        ready: false.into(),
        board: Default::default(),
    })
}
