//! `lifeline gateway`: the settings as flags and `LIFELINE_*` environment (clap, on the library's
//! [`RawConfig`]), the optional config file and the files it names, telemetry, then `lifeline_gateway::Gateway`
//! until a stop signal and its drain: this file owns the OS signals and walks the gateway's `Shutdown` through
//! the drain timetable (`lifeline_core::supervise`). Exit codes: after a signal the rule of
//! `exit::after_signal` (0 once the drain is over: clean, forced or cut short by a second signal), 64 for a bad
//! configuration (every problem one a line), 2 when a listener cannot be bound (the OS error once, with the
//! address and a hint).

use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context as _;
use lifeline_core::config::check_ok_report;
use lifeline_gateway::{FileFormat, Gateway, GatewayConfig, GatewayError, RawConfig};

use crate::exit::{self, UsageError, OK};

/// Arguments of `lifeline gateway`: every setting of [`RawConfig`] (each flag can also come from the
/// `LIFELINE_*` variable named in its help and from `--config`; precedence: defaults < config file <
/// environment < flags), plus the two that say where the settings come from and what to do with them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Precedence: built-in defaults < --config file < LIFELINE_* environment < flags. \
Durations take units (500ms, 5s, 30m). Logs go to stderr, filtered by LIFELINE_LOG (default: info)."
)]
pub(crate) struct Args {
    #[command(flatten)]
    settings: RawConfig,

    /// A YAML or TOML file (by extension; YAML otherwise) with any of the settings above, snake_case keys
    /// (upstream_headers and allowed_origins are lists). Unknown keys are errors. [default: none]
    #[arg(long, env = "LIFELINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration and exit: print "config OK" and the effective settings (secrets redacted) as
    /// JSON, or every problem one a line with its field path (exit 64).
    #[arg(long)]
    check_config: bool,
}

/// What `lifeline gateway` does once its settings are read, before any runtime exists.
pub(crate) enum Prepared {
    /// `--check-config`: the configuration was printed; exit 0.
    Checked,
    /// Serve with this configuration, on a runtime of [`Workers`].
    Serve(Box<GatewayConfig>, Workers),
}

/// The runtime's worker threads and where the number came from (logged at start-up).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workers {
    pub(crate) threads: NonZeroUsize,
    /// The container's CPU limit in CPUs, when one is set.
    pub(crate) cpu_limit: Option<f64>,
    /// Whether `worker_threads` was set (flag, variable or file) rather than derived.
    pub(crate) configured: bool,
}

/// Reads the settings (defaults < file < environment < flags) and validates them; with `--check-config` prints
/// them. Synchronous: the runtime is built afterwards, sized by [`Workers`] (`worker_threads`, or the CPU quota
/// through `lifeline_core::cpus`).
pub(crate) fn prepare(args: Args) -> anyhow::Result<Prepared> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read --config {}: {e}", path.display())))?;
            RawConfig::parse(&text, FileFormat::from_path(path))
                .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?
        }
        None => RawConfig::default(),
    };
    let cfg = file
        .merge(args.settings)
        .validate(&|path| std::fs::read_to_string(path))
        .map_err(|e| UsageError(format!("invalid gateway configuration:\n{e}")))?;
    if args.check_config {
        std::io::stdout().write_all(check_ok_report(&cfg.redacted())?.as_bytes())?;
        // Valid but likely unintended (federation naming, cards ahead of auth): warnings, not errors.
        for warning in cfg.warnings() {
            eprintln!("warning: {warning}");
        }
        return Ok(Prepared::Checked);
    }
    let quota = lifeline_core::cpus::read_cpu_quota();
    let available = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let workers = Workers {
        threads: cfg
            .worker_threads
            .unwrap_or_else(|| lifeline_core::cpus::worker_threads(quota, available)),
        cpu_limit: quota.map(|q| q.cpus()),
        configured: cfg.worker_threads.is_some(),
    };
    Ok(Prepared::Serve(Box::new(cfg), workers))
}

/// Runs `lifeline gateway` with a prepared configuration; returns the exit code.
pub(crate) async fn run(
    cfg: GatewayConfig,
    workers: Workers,
    traces: Option<&lifeline_core::telemetry::TracesConfig>,
) -> anyhow::Result<u8> {
    let filter = std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "info".to_owned());
    lifeline_core::telemetry::init(cfg.log_format, &filter, traces)
        .map_err(|e| UsageError(e.to_string()))?;
    // Install the handlers before binding, so a signal during start-up drains instead of killing.
    let mut signals =
        lifeline_core::Signals::new().context("installing the SIGTERM/SIGINT handlers")?;
    tracing::info!(config = %cfg.redacted(), "Effective configuration.");
    for warning in cfg.warnings() {
        tracing::warn!(warning, "Configuration warning.");
    }
    tracing::info!(
        worker_threads = workers.threads.get(),
        cpu_limit = workers.cpu_limit,
        configured = workers.configured,
        "Runtime."
    );
    let gateway = Gateway::bind(cfg).await.map_err(bind_error)?;
    tracing::info!(
        listen = %display_addr(gateway.client_addr()),
        admin_listen = %display_addr(gateway.admin_addr()),
        "Gateway listening."
    );
    let shutdown = lifeline_core::Shutdown::new();
    let (plan, inflight) = (gateway.drain_plan(), gateway.in_flight());
    let run = gateway.run(shutdown.clone());
    let ended = lifeline_core::supervise(run, &shutdown, &inflight, plan, &mut signals).await;
    // The gateway serves until the drain forces it to stop, so a signal has always arrived here.
    Ok(ended
        .signal
        .map_or(OK, |signal| exit::after_signal(signal, false)))
}

/// A listener that cannot be bound: the OS error once, the address and setting, and what to do. Exit 2 (an
/// operational error: the configuration is valid, the machine is not ready for it).
fn bind_error(err: GatewayError) -> anyhow::Error {
    match err {
        GatewayError::Bind {
            which,
            addr,
            source,
        } => {
            let flag = which.replace('_', "-");
            let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
                format!("another process is listening there; stop it, or choose another address with --{flag} (or {which} in the config file)")
            } else {
                format!("check the address given with --{flag} (or {which} in the config file)")
            };
            anyhow::anyhow!("cannot listen on {addr} ({which}): {source}; {hint}")
        }
        #[allow(unreachable_patterns)] // for variants added later
        other => anyhow::Error::new(other),
    }
}

fn display_addr(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
}
