//! `lifeline scan`: a census of many MCP endpoints in one run (docs/census.md). The engine, the categories and
//! the report formats live in `lifeline-scan`; this file turns flags into options, owns the terminal (progress
//! bar or log lines, the closing summary), Ctrl-C, the open-file limit and the exit code.
//!
//! Ctrl-C walks the engine's `Shutdown`: the first SIGINT/SIGTERM moves it to `Refusing` (no new probes; those
//! in flight get `--drain`), a second one aborts (`Forcing`: abandon them now).
//!
//! Exit codes: 0 complete report written; 2 operational error (unreadable input, unwritable output, input that
//! breaks off part-way: the partial report is still written); 64 usage; after a signal the rule of
//! `exit::after_signal`: 130 interrupted by SIGINT (143 by SIGTERM) when the partial report was written, 0
//! when the scan had finished anyway.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lifeline_core::{Phase, Shutdown, SignalKind, Signals};
use lifeline_mcp::probe::config::DEFAULT_CERT_WARNING_DAYS;
use lifeline_mcp::probe::Timeouts;
use lifeline_mcp::ProbeOptions;
use lifeline_scan::engine::{DEFAULT_CONCURRENCY, DEFAULT_PER_HOST};
use lifeline_scan::report::ReportError;
use lifeline_scan::{
    EngineProber, Formats, InputSource, Progress, ReportOptions, Reports, RunFacts, ScanOptions,
    Settings,
};

use crate::exit::{self, UsageError};

mod progress;

const AFTER_HELP: &str = "\
Examples:
  lifeline scan endpoints.txt                    # one URL per line, '#' comments
  lifeline scan registry.json                    # GET /v0/servers of an MCP registry
  lifeline scan endpoints.txt --out report/ --format json,csv,html
  lifeline scan endpoints.txt --out report/ --baseline old/scan.jsonl
  lifeline scan endpoints.txt --emit-monitor-config monitor.yaml
  lifeline scan list.txt --attempts 3 --attempt-spacing 30s

Categories: healthy, degraded (slow or certificate expiring), auth_gated
(401/403), broken (answers but fails MCP), dead (DNS, refused, timeout, TLS),
refused_private (not probed: resolves to a private/loopback/link-local
address; --allow-private probes them).

Ctrl-C stops starting probes, lets those in flight finish for --drain, writes
the partial report and exits 130; a second Ctrl-C abandons them at once.

Exit codes:
  0    report written (whatever the endpoints' health)
  2    operational error: unreadable input, unwritable output
  64   usage error
  130  interrupted (partial report written); 143 for SIGTERM

Docs: docs/census.md.";

/// Arguments of `lifeline scan`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP, after_help = "Run with --help for examples, categories and exit codes.")]
pub(crate) struct Args {
    /// The endpoint list: a text file with one URL per line ('#' comments), a JSON array of URLs, or an MCP
    /// registry export (the `GET /v0/servers` answer; every server's `remotes[].url` is scanned). A bare domain
    /// (`example.com`) or an AI Catalog URL (`.../.well-known/ai-catalog.json`) scans the endpoints its MCP
    /// Server Cards list (docs/census.md). `-` reads standard input.
    #[arg(value_name = "INPUT")]
    pub(crate) input: PathBuf,

    /// Write the reports into DIR (created if missing): scan.jsonl + summary.json, scan.csv, report.html (see
    /// --format), and diff.jsonl with --baseline.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,

    /// Which reports to write into --out, comma-separated: json (scan.jsonl and summary.json), csv, html.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "json,csv,html",
        requires = "out"
    )]
    pub(crate) format: String,

    /// Compare with an earlier scan's scan.jsonl: newly dead, recovered, drifted (tool schema changed), changed,
    /// new and gone endpoints.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,

    /// Write the usable endpoints (healthy and degraded) as a `lifeline monitor` config (YAML `targets:` with a
    /// unique name per URL).
    #[arg(long, value_name = "FILE")]
    pub(crate) emit_monitor_config: Option<PathBuf>,

    /// Probes in flight at once, over all hosts.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub(crate) concurrency: usize,

    /// Probes in flight at once against one host (name or address).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PER_HOST,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub(crate) per_host: usize,

    /// Bound on one probe, all phases together ("10s", "1500ms").
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// A probe slower than this in total is degraded (slow), not healthy.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) latency_bound: Duration,

    /// Probe an endpoint that is not healthy up to N times in all and keep the best result.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) attempts: u32,

    /// Wait between two attempts on the same endpoint.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) attempt_spacing: Duration,

    /// Also probe hosts that resolve to private, loopback, link-local, CGNAT or other non-public addresses. Off
    /// by default: a registry is untrusted input.
    #[arg(long)]
    pub(crate) allow_private: bool,

    /// After Ctrl-C, how long probes in flight may finish before they are abandoned.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub(crate) drain: Duration,

    /// Certificates expiring within this many days are listed (and make the endpoint degraded).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_CERT_WARNING_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub(crate) cert_warning_days: i64,

    /// Progress display: `auto` (a bar on a terminal, log lines otherwise), `bar`, `log`, `none`.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto, value_name = "MODE")]
    pub(crate) progress: progress::Mode,

    /// Interval of the progress log lines.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) progress_interval: Duration,
}

/// Runs `lifeline scan`; returns the exit code.
pub(crate) async fn run(args: Args) -> anyhow::Result<u8> {
    let formats = Formats::parse(&args.format).map_err(|e| UsageError(format!("--format: {e}")))?;
    let source = if args.input.as_os_str() == "-" {
        InputSource::Stdin
    } else {
        if !args.input.is_file() {
            anyhow::bail!(
                "cannot read the input {}: not a readable file",
                args.input.display()
            );
        }
        InputSource::Path(args.input.clone())
    };
    let input_label = args.input.display().to_string();

    let reports = Reports::create(ReportOptions {
        out_dir: args.out.clone(),
        formats,
        baseline: args.baseline.clone(),
        monitor_config: args.emit_monitor_config.clone(),
        cert_window_days: args.cert_warning_days,
    })
    .map_err(|e| match e {
        ReportError::Baseline(lifeline_scan::baseline::BaselineError::Empty { .. }) => {
            anyhow::Error::new(UsageError(format!("--baseline: {e}")))
        }
        other => anyhow::Error::new(other),
    })?;
    let mut reports = reports;

    let options = ScanOptions {
        concurrency: args.concurrency,
        per_host: args.per_host,
        attempts: args.attempts,
        attempt_spacing: args.attempt_spacing,
        allow_private: args.allow_private,
        drain: args.drain,
        queue: lifeline_scan::engine::default_queue(args.concurrency),
    };
    let prober = EngineProber {
        options: ProbeOptions {
            timeouts: Timeouts {
                total: args.timeout,
                ..Timeouts::default()
            },
            slow_after: args.latency_bound,
            cert_warning_days: args.cert_warning_days,
            ..ProbeOptions::default()
        },
    };
    raise_open_file_limit(args.concurrency);

    // Signals first, so a Ctrl-C during start-up is not lost.
    let mut os_signals = Signals::new()?;
    let shutdown = Shutdown::new();
    let first_signal: Arc<OnceLock<SignalKind>> = Arc::new(OnceLock::new());
    let signal_task = {
        let shutdown = shutdown.clone();
        let first_signal = Arc::clone(&first_signal);
        let drain = args.drain;
        tokio::spawn(async move {
            let first = os_signals.recv().await;
            let _ = first_signal.set(first);
            eprintln!(
                "lifeline scan: {}: starting no new probes; waiting up to {} for those in flight \
                 (again to abandon them)",
                first.as_str(),
                humantime::format_duration(drain)
            );
            // A census has no readiness to drop: straight to refusing new work.
            shutdown.advance(Phase::Refusing);
            let _ = os_signals.recv().await;
            shutdown.abort();
        })
    };

    let progress = Arc::new(Progress::default());
    let display =
        progress::Display::start(args.progress, args.progress_interval, Arc::clone(&progress));
    let result = lifeline_scan::scan(
        source,
        prober,
        &options,
        Arc::clone(&progress),
        &mut reports,
        shutdown,
    )
    .await;
    display.finish().await;
    signal_task.abort();
    let signal = first_signal.get().copied();
    let run = result?;

    let facts = RunFacts {
        input: input_label,
        elapsed_s: run.elapsed.as_secs_f64(),
        partial: run.is_partial(),
        interrupted: run.interrupted,
        abandoned: run.abandoned,
        not_started: run.not_started,
        input_error: run.input_error.as_ref().map(ToString::to_string),
        settings: Settings {
            concurrency: options.concurrency,
            per_host: options.per_host,
            attempts: options.attempts,
            timeout_s: args.timeout.as_secs_f64(),
            latency_bound_s: args.latency_bound.as_secs_f64(),
            allow_private: options.allow_private,
        },
    };
    let (summary, written) = reports.finish(facts)?;
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(summary.render_text().as_bytes())?;
        stdout.flush()?;
    }
    for path in &written.0 {
        eprintln!("lifeline scan: wrote {}", path.display());
    }
    if let Some(err) = run.input_error {
        return Err(
            anyhow::Error::new(err).context("the input broke off; the partial report was written")
        );
    }
    Ok(signal.map_or(exit::OK, |signal| {
        exit::after_signal(signal, run.interrupted)
    }))
}

/// Raises the soft open-file limit towards the hard one when the concurrency needs more descriptors than the
/// soft limit allows (each probe holds a socket or two, plus the resolver's). Failure only logs: the scan then
/// sees `connect` errors for the excess.
fn raise_open_file_limit(concurrency: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let wanted = (concurrency as u64).saturating_mul(3).saturating_add(256);
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < wanted => {
            let target = wanted.min(hard);
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
                eprintln!("lifeline scan: cannot raise the open-file limit from {soft} to {target}: {err}");
            } else if target < wanted {
                eprintln!(
                    "lifeline scan: the open-file limit ({hard}) is low for --concurrency {concurrency}; \
                     expect connect errors (raise it with `ulimit -n`)"
                );
            }
        }
        Ok(_) => {}
        Err(err) => eprintln!("lifeline scan: cannot read the open-file limit: {err}"),
    }
}

/// A humantime duration ("10s", "500ms", "1m 30s"), more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (write a number with a unit: \"10s\", \"500ms\", \"1m\")"))?;
    if d.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(d)
}
