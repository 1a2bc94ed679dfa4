//! `lifeline`: keeps MCP servers alive in production. One binary, one subcommand per face:
//! `check` (post-deploy smoke test and CI gate), `gateway` (the sidecar), `monitor` (continuous external
//! monitoring), `scan` (a census of many endpoints) and `lint` (Kubernetes manifests).
//!
//! This file parses arguments, starts the runtime, turns on traces when asked (`otel.rs`: `--otlp-endpoint` and
//! the `OTEL_*` variables), dispatches to the subcommand, flushes the traces and prints its error; each
//! subcommand lives in its own file, and `exit.rs` holds the exit codes and the rules that pick them.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod check;
mod exit;
mod gateway;
mod lint;
mod monitor;
mod monitor_agent;
mod otel;
mod scan;

/// How long the exit waits for queued spans to reach the collector.
const TRACES_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps MCP (Model Context Protocol) servers alive in production.
#[derive(Debug, Parser)]
#[command(name = "lifeline", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) otel: otel::OtelArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

// The arguments are parsed once per process: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Probe MCP servers once and exit non-zero when one is broken: the post-deploy smoke test and CI gate.
    Check(check::Args),
    /// Run the Kubernetes-ready front for an MCP server (HTTP upstream, or a stdio command after `--`).
    Gateway(gateway::Args),
    /// Monitor MCP endpoints continuously: history, incidents, alerts and a status page.
    Monitor(monitor::Args),
    /// Census of many MCP endpoints at once: dead, auth-gated, broken, healthy.
    Scan(scan::Args),
    /// Find deployment mistakes in Kubernetes manifests that kill MCP servers.
    Lint(lint::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = exit::for_clap_error(&err);
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let result = run(cli);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = exit::for_error(&err);
            match code {
                exit::OK => {}
                exit::USAGE => match err.downcast_ref::<exit::UsageError>() {
                    Some(usage) => eprintln!("error: {usage}"),
                    None => eprintln!("error: {err}"),
                },
                _ => eprintln!("error: {err:#}"),
            }
            ExitCode::from(code)
        }
    }
}

/// Reads the traces settings, builds the runtime and runs the subcommand on it; returns its exit code.
fn run(cli: Cli) -> anyhow::Result<u8> {
    let traces = otel::traces_config(&cli.otel, &|name| std::env::var(name).ok())?;
    match cli.command {
        // The gateway's settings size its runtime, so they are read before it exists.
        Command::Gateway(args) => match gateway::prepare(args)? {
            gateway::Prepared::Checked => Ok(exit::OK),
            gateway::Prepared::Serve(cfg, workers) => block_on(
                Some(workers.threads),
                gateway::run(*cfg, workers, traces.as_ref()),
            ),
        },
        other => block_on(None, dispatch(other, traces.as_ref())),
    }
}

/// Runs `job` on a tokio runtime with `workers` worker threads, then flushes the traces (at most
/// [`TRACES_FLUSH`]): tokio's default (the CPUs the process may run on) when `None`; one worker is tokio's
/// current-thread scheduler, which runs every task on this thread (no work-stealing queues, no wakeups across
/// threads: the cheapest per request when only one core is paid for).
fn block_on(
    workers: Option<NonZeroUsize>,
    job: impl std::future::Future<Output = anyhow::Result<u8>>,
) -> anyhow::Result<u8> {
    let mut builder = match workers.map(NonZeroUsize::get) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    let runtime = builder.build().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let result = job.await;
        lifeline_core::telemetry::shutdown(TRACES_FLUSH).await;
        result
    });
    // Don't wait for stray blocking tasks (a stdin reader, a resolver) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// Runs a subcommand other than the gateway (which `run` prepares before its runtime); returns its exit code.
/// The monitor sets up its logs and traces itself, after validating its configuration; `check`, `scan` and
/// `lint` log nothing and get a traces-only subscriber.
async fn dispatch(
    command: Command,
    traces: Option<&lifeline_core::telemetry::TracesConfig>,
) -> anyhow::Result<u8> {
    if let (Some(traces), Command::Check(_) | Command::Scan(_) | Command::Lint(_)) =
        (traces, &command)
    {
        lifeline_core::telemetry::init_traces(traces)
            .map_err(|e| exit::UsageError(e.to_string()))?;
    }
    match command {
        Command::Check(args) => check::run(args).await,
        Command::Gateway(_) => unreachable!("`run` prepares and runs the gateway itself"),
        Command::Monitor(args) => monitor::run(args, traces).await,
        Command::Scan(args) => scan::run(args).await,
        Command::Lint(args) => lint::run(args).await,
    }
}
