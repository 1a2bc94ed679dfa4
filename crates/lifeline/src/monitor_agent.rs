//! `lifeline monitor agent --region R --central URL --token-file F`: the probe-only agent of a multi-region
//! monitor (issue 14, "Regions"; `lifeline_monitor::agent::run`). It connects outward only: pulls its
//! assignments from the central monitor and pushes results with the bearer token read from `--token-file`,
//! spooling them on disk (`--spool`, bounded by `--spool-max`) while the central side is unreachable.
//! SIGTERM/SIGINT stop it; what is spooled stays on disk for the next start.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use lifeline_core::signals::Signals;
use lifeline_monitor::agent::run::{run, AgentOptions, AgentStats};
use lifeline_monitor::McpProber;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::exit::{UsageError, OK};

/// Arguments of `lifeline monitor agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// The region this agent probes from; must match the `region` of its entry in the central `agents:`.
    #[arg(long, env = "LIFELINE_AGENT_REGION")]
    region: String,
    /// The central monitor's base URL (its status page address), e.g. `https://monitor.example.com`.
    #[arg(long, value_name = "URL", env = "LIFELINE_AGENT_CENTRAL")]
    central: Url,
    /// A file holding this agent's bearer token; the central side stores its SHA-256
    /// (`printf %s "$TOKEN" | sha256sum`).
    #[arg(long, value_name = "FILE", env = "LIFELINE_AGENT_TOKEN_FILE")]
    token_file: PathBuf,
    /// The spool file (JSON lines) for results not yet accepted by the central side.
    #[arg(long, value_name = "FILE", default_value = "lifeline-agent.spool")]
    spool: PathBuf,
    /// Most results spooled; beyond it the oldest are dropped (and counted).
    #[arg(long, default_value_t = lifeline_monitor::agent::spool::DEFAULT_SPOOL_MAX)]
    spool_max: usize,
}

/// Runs the agent until SIGTERM/SIGINT; returns the exit code.
pub(crate) async fn run_agent(args: AgentArgs) -> anyhow::Result<u8> {
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading --token-file {}", args.token_file.display()))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(UsageError(format!(
            "--token-file {} is empty",
            args.token_file.display()
        ))
        .into());
    }
    if !matches!(args.central.scheme(), "http" | "https") {
        return Err(UsageError("--central: must be an http or https URL".into()).into());
    }
    let filter = std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "info".to_owned());
    lifeline_core::telemetry::init(lifeline_core::LogFormat::default(), &filter, None)
        .map_err(|e| UsageError(e.to_string()))?;
    let mut signals = Signals::new().context("installing signal handlers")?;
    let mut opts = AgentOptions::new(args.central.clone(), token, args.spool);
    opts.spool_max = args.spool_max;
    opts.region = Some(args.region.clone());
    tracing::info!(region = %args.region, central = %lifeline_monitor::config::redact_url(&args.central), "Starting the probe agent.");
    let stop = CancellationToken::new();
    let stats = Arc::new(Mutex::new(AgentStats::default()));
    let task = tokio::spawn(run(opts, Arc::new(McpProber), stats, stop.clone()));
    let signal = signals.recv().await;
    tracing::info!(signal = signal.as_str(), "Stopping the probe agent.");
    stop.cancel();
    task.await.context("the agent task panicked")??;
    Ok(OK)
}
