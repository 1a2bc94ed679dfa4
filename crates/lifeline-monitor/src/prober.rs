//! The seam between the scheduler and the probe engine: [`Prober`]. Production uses [`McpProber`], which calls
//! `lifeline_mcp::probe`; tests script outcomes with their own implementation.

use std::future::Future;
use std::pin::Pin;

use lifeline_mcp::ProbeReport;

use crate::config::TargetConfig;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Probes one target once. Must never fail (a failure is a report with a verdict) and must respect
/// `target.timeout`; the scheduler adds a safety margin on top and reports `timeout` if it is overrun.
pub trait Prober: Send + Sync + 'static {
    /// Probes `target`.
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport>;
}

/// The real prober: `lifeline_mcp::probe` with the target's options.
#[derive(Debug, Clone, Copy, Default)]
pub struct McpProber;

impl Prober for McpProber {
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport> {
        Box::pin(async move {
            let t = target.probe_target();
            let opts = target.probe_options();
            lifeline_mcp::probe(&t, &opts).await
        })
    }
}
