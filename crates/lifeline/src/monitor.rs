//! `lifeline monitor`: continuous external monitoring with history, incidents, alerts and a status page.
//! Quick start with `--target URL` (SQLite at `./lifeline.db`, page on 127.0.0.1:8080), or `--config FILE`;
//! `--listen`, `--storage` and `--log-format` (or their `LIFELINE_*` variables) override the file;
//! `--check-config` validates and exits (0 with "config OK" and the redacted effective configuration, 64 with
//! every problem one a line). This file owns the OS signals: SIGTERM/SIGINT walk the monitor's `Shutdown`
//! through the drain timetable of its `Lifecycle` (the config's `shutdown:` block) with
//! `lifeline_core::supervise`: not ready, then no new probes, in-flight probes finish and are written; a second
//! signal exits at once. After a signal the exit code is the rule of `exit::after_signal` (0).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use lifeline_core::config::check_ok_report;
use lifeline_core::signals::Signals;
use lifeline_core::telemetry;
use lifeline_core::Shutdown;
use lifeline_monitor::config::redact_url;
use lifeline_monitor::config::Overrides;
use lifeline_monitor::{Config, McpProber, Monitor};
use url::Url;

use crate::exit::{self, UsageError, OK};

/// Arguments of `lifeline monitor`: where the configuration comes from, and the [`Overrides`] (flags with
/// their `LIFELINE_*` variables) laid over it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Precedence: built-in defaults < --config file < LIFELINE_* environment < flags. \
Logs go to stderr, filtered by LIFELINE_LOG (default: info).",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Args {
    /// `lifeline monitor agent …`: run a probe-only agent instead (monitor-agents branch, `monitor_agent.rs`).
    #[command(subcommand)]
    command: Option<MonitorCommand>,
    /// The configuration file (YAML, see docs/monitor.md).
    #[arg(
        long,
        value_name = "FILE",
        env = "LIFELINE_CONFIG",
        conflicts_with = "target"
    )]
    config: Option<PathBuf>,
    /// Quick start: monitor this MCP URL with every default (repeatable; comma-separate in the variable).
    #[arg(
        long,
        value_name = "URL",
        env = "LIFELINE_TARGET",
        value_delimiter = ','
    )]
    target: Vec<String>,
    /// Validate the configuration and exit: print "config OK" and the effective configuration (secrets
    /// redacted) as JSON, or every problem one a line with its field path (exit 64).
    #[arg(long)]
    check_config: bool,
    /// The key that seals rotated OAuth refresh tokens in the database (a file holding 32 bytes as 64 hex digits
    /// or base64, e.g. `openssl rand -base64 32`; keep it outside the data directory). Without it,
    /// LIFELINE_SECRET_KEY holds the key itself; without either, rotated refresh tokens live in memory only.
    #[arg(long, value_name = "FILE", env = "LIFELINE_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// Deprecated: the same as --log-format json.
    #[arg(long, hide = true)]
    log_json: bool,
}

/// The subcommands of `lifeline monitor`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MonitorCommand {
    /// A probe-only agent in another region: pulls its targets from the central monitor and pushes results
    /// (docs/monitor-ha.md, "Regions").
    Agent(crate::monitor_agent::AgentArgs),
}

/// Runs `lifeline monitor`; returns the exit code.
pub(crate) async fn run(
    mut args: Args,
    traces: Option<&telemetry::TracesConfig>,
) -> anyhow::Result<u8> {
    if let Some(MonitorCommand::Agent(a)) = args.command.take() {
        return crate::monitor_agent::run_agent(a).await;
    }
    let config = load(&args)?;
    let secret_key = secret_key(&args)?;
    if args.check_config {
        std::io::stdout().write_all(check_ok_report(&config)?.as_bytes())?;
        return Ok(OK);
    }

    let filter = std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "info".to_owned());
    telemetry::init(config.log_format, &filter, traces).map_err(|e| UsageError(e.to_string()))?;
    // Before binding anything, so a signal during start-up is not lost.
    let mut signals = Signals::new().context("installing signal handlers")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(config = %config.summary(), "Starting the monitor.");
    tracing::debug!(config = %serde_json::to_string(&config)?, "Effective configuration.");
    for t in &config.targets {
        tracing::debug!(target.name = %t.name, target.url = %redact_url(&t.url), interval_s = t.interval.as_secs(), "Target.");
    }
    let refresh_tokens = config_has_refresh_tokens(&config);
    let replica = format!("{}-{}", hostname(), std::process::id());
    // The lifecycle's defaults until the configuration carries its grace periods.
    let monitor = Monitor::new(config, Arc::new(McpProber), replica)
        .await
        .context("opening the monitor's database")?;
    match secret_key {
        Some(key) => {
            let n = monitor.seal_refresh_tokens(key);
            tracing::info!(clients = n, "Rotated refresh tokens are sealed into the database.");
        }
        None if refresh_tokens => tracing::warn!(
            "Rotated refresh tokens are kept in memory only: a restart falls back to the configured one. \
             Set LIFELINE_SECRET_KEY or --secret-key-file to keep them."
        ),
        None => {}
    }
    tracing::info!(url = %format!("http://{addr}/"), "Status page listening.");

    let shutdown = Shutdown::new();
    let (plan, inflight) = (monitor.lifecycle().drain_plan(), monitor.in_flight());
    let task = tokio::spawn(monitor.run(listener, shutdown.clone()));
    let ended = lifeline_core::supervise(task, &shutdown, &inflight, plan, &mut signals).await;
    ended
        .output
        .context("the monitor task panicked")?
        .context("monitor")?;
    Ok(ended
        .signal
        .map_or(OK, |signal| exit::after_signal(signal, false)))
}

/// The sealing key: `--secret-key-file` (or `LIFELINE_SECRET_KEY_FILE`), else `LIFELINE_SECRET_KEY`. A key that
/// cannot be read is an operational error (exit 2), one that does not parse a usage error (exit 64); neither
/// message contains the key.
fn secret_key(args: &Args) -> anyhow::Result<Option<lifeline_monitor::seal::SealKey>> {
    use lifeline_monitor::seal::SealKey;
    if let Some(path) = &args.secret_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret key file {}", path.display()))?;
        return SealKey::parse(&text).map(Some).map_err(|e| {
            UsageError(format!("the secret key file {}: {e}", path.display())).into()
        });
    }
    match std::env::var("LIFELINE_SECRET_KEY") {
        Ok(text) if !text.trim().is_empty() => SealKey::parse(&text)
            .map(Some)
            .map_err(|e| UsageError(format!("LIFELINE_SECRET_KEY: {e}")).into()),
        _ => Ok(None),
    }
}

fn config_has_refresh_tokens(config: &Config) -> bool {
    config.targets.iter().any(|t| {
        t.auth
            .as_ref()
            .and_then(|a| a.oauth.as_ref())
            .is_some_and(|c| c.config().refresh_token.is_some())
    })
}

fn load(args: &Args) -> anyhow::Result<Config> {
    let env = |name: &str| std::env::var(name).ok();
    let mut overrides = args.overrides.clone();
    if args.log_json && overrides.log_format.is_none() {
        overrides.log_format = Some("json".to_owned());
    }
    match (&args.config, args.target.is_empty()) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            Config::from_yaml_with(&text, &env, &overrides).map_err(|e| {
                UsageError(format!("{}: invalid configuration:\n{e}", path.display())).into()
            })
        }
        (None, false) => {
            let mut urls = Vec::new();
            for (i, t) in args.target.iter().enumerate() {
                urls.push(
                    Url::parse(t).map_err(|e| {
                        UsageError(format!("--target[{i}]: `{t}` is not a URL ({e})"))
                    })?,
                );
            }
            Config::quick_start_with(&urls, &overrides)
                .map_err(|e| UsageError(format!("invalid configuration:\n{e}")).into())
        }
        (None, true) => Err(UsageError(
            "give --config FILE or --target URL (see `lifeline monitor --help`)".into(),
        )
        .into()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lifeline".to_owned())
}
