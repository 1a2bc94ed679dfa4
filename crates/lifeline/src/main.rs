//! `lifeline`: keeps MCP servers alive in production. One binary, one subcommand per face:
//! `check` (post-deploy smoke test and CI gate), `gateway` (the sidecar), `monitor` (continuous external
//! monitoring), `scan` (a census of many endpoints) and `lint` (Kubernetes manifests).
//!
//! This file parses arguments, starts the runtime, turns on traces when asked (`otel.rs`: `--otlp-endpoint` and
//! the `OTEL_*` variables), dispatches to the subcommand, flushes the traces and prints its error; each
//! subcommand lives in its own file, and `exit.rs` holds the exit codes and the rules that pick them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod exit;
mod gateway;
mod lint;
mod monitor;
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::OPERATIONAL);
        }
    };
    let result = runtime.block_on(async {
        let result = dispatch(cli.command, &cli.otel).await;
        lifeline_core::telemetry::shutdown(TRACES_FLUSH).await;
        result
    });
    // Don't wait for stray blocking tasks (a stdin reader, a resolver) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
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

/// Runs the subcommand; returns its exit code. The services (`gateway`, `monitor`) set up their logs and traces
/// themselves, after validating their configuration; the others log nothing and get a traces-only subscriber.
async fn dispatch(command: Command, otel: &otel::OtelArgs) -> anyhow::Result<u8> {
    let traces = otel::traces_config(otel, &|name| std::env::var(name).ok())?;
    if let (Some(traces), Command::Check(_) | Command::Scan(_) | Command::Lint(_)) =
        (&traces, &command)
    {
        lifeline_core::telemetry::init_traces(traces)
            .map_err(|e| exit::UsageError(e.to_string()))?;
    }
    match command {
        Command::Check(args) => check::run(args).await,
        Command::Gateway(args) => gateway::run(args, traces.as_ref()).await,
        Command::Monitor(args) => monitor::run(args, traces.as_ref()).await,
        Command::Scan(args) => scan::run(args).await,
        Command::Lint(args) => lint::run(args).await,
    }
}
