//! The `lifeline` binary's tests, in one test binary: each module runs the built binary
//! (`CARGO_BIN_EXE_lifeline`) as a user, CI job or orchestrator would, and asserts its stdout, JSON, logs and exit
//! codes. The gateway tests here are the ones that need a real OS process (signals, exit codes, PID 1 under
//! `unshare`, the HAProxy roll, CLI parsing and `--check-config`); the gateway's in-process tests live in
//! `crates/lifeline-gateway/tests/it`. Real peers come from `scripts/install-peers.sh` (`LIFELINE_PEERS_DIR`).

/// `lifeline check`: output formats, exit codes, snapshots and drift.
mod check_cli;
/// `lifeline check` against the real MCP peers.
mod check_peers;
/// `lifeline check --transaction` against a real server: JSON, JUnit, exit codes, the safety gate.
mod check_transactions;
/// The Kubernetes kit's container command lines parse.
mod deploy_args;
/// Server Cards and AI Catalogs: the gateway serves them, check reports them, scan follows them.
mod discovery;
/// `lifeline gateway` flags, `--help`, `--check-config` and the config file.
mod gateway_cli;
/// The drain on SIGTERM/SIGINT: phases, exit codes, logs.
mod gateway_drain;
/// Credentials and MCP headers at the edge; the secret stays out of the log.
mod gateway_edge;
/// Shared helpers of the `gateway_*` modules.
mod gateway_harness;
/// A stdio MCP server behind the gateway (session and pool mode, signals, PID 1).
mod gateway_stdio;
/// OpenTelemetry traces through the gateway and from `check`, against a real OTLP receiver.
mod gateway_traces;
/// The zero-downtime roll behind HAProxy.
mod gateway_zero_downtime;
/// `lifeline monitor agent`, the binary, probing a target behind OAuth for a central monitor (issue 14).
mod monitor_agent;
/// The status page in headless Chromium.
mod monitor_browser;
/// `lifeline monitor` as a user runs it.
mod monitor_cli;
/// `lifeline monitor` replicas on a real PostgreSQL: kill -9 and SIGSTOP of a shard holder (issue 14).
mod monitor_ha;
/// deploy/observability: rules through promtool, dashboards against Grafana's schema, a real Prometheus.
mod observability;
/// `lifeline scan` as a user runs it.
mod scan_cli;
