//! Probing from several regions (issue 14, "Regions"; `docs/monitor-ha.md` §Regions): the quorum rule
//! ([`quorum`]), agent tokens ([`token`]: SHA-256 files, revocable, two for a rotation), the agents' API under
//! the web server ([`api`]: assignments with the target's credentials, result pushes stored in
//! `region_results`, each call recorded in the store's `agents` row, so every replica serves the same agent
//! liveness), what is pushed and stored ([`result`]), the agent process with its disk spool ([`run`],
//! [`spool`]), and the judgement of rounds and of the fleet from the store by the shard holders
//! ([`evaluate`]): verdicts go through the recorder's incident machine, fleet episodes (probe fleet degraded,
//! a stale agent, a tool schema differing across regions) through the same outbox.

pub mod api;
pub mod evaluate;
pub mod metrics;
pub mod quorum;
pub mod result;
pub mod run;
pub mod spool;
pub mod token;

pub use result::{AgentResult, RegionResult};

/// True for a target probed by agents only (it has `regions:` and is not a transaction target): the central
/// scheduler leaves it out, and its shard holder judges its rounds from the agents' results.
pub fn by_agents(t: &crate::config::TargetConfig) -> bool {
    t.regions.is_some() && t.transaction.is_none()
}

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
    })
}

/// Tests: the verdict of the round `[from_ms, from_ms + interval)` of the configured target `target`, judged
/// from the store as the shard holder judges it.
#[cfg(test)]
pub(crate) async fn stored_verdict(
    app: &crate::web::AppState,
    target: &str,
    from_ms: i64,
) -> quorum::RoundVerdict {
    let t = app
        .config
        .targets
        .iter()
        .find(|t| t.name == target)
        .expect("a configured target");
    let rows = app
        .store
        .region_results_between(
            Some(target),
            from_ms,
            from_ms + t.interval.as_millis() as i64,
        )
        .await
        .expect("the test store answers");
    evaluate::round_verdict(t, &rows, from_ms)
}
