//! `lifeline`: keeps MCP servers alive in production. One binary, one subcommand per face:
//! `check` (post-deploy smoke test and CI gate), `gateway` (the sidecar), `monitor` (continuous external
//! monitoring), `scan` (a census of many endpoints) and `lint` (Kubernetes manifests).
//!
//! This file only parses arguments, sets up telemetry and maps results to exit codes; each subcommand lives in
//! its own file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod exit;
mod gateway;
mod lint;
mod monitor;
mod scan;

/// Keeps MCP (Model Context Protocol) servers alive in production.
#[derive(Debug, Parser)]
#[command(name = "lifeline", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
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
        Err(err) => return exit::clap_error(err),
    };
    exit::run(cli)
}
