//! Exit codes and the runtime around a subcommand. 0 healthy/clean, 1 findings, 2 operational error, 64 usage
//! (sysexits `EX_USAGE`). A broken pipe on stdout exits quietly.

use std::process::ExitCode;

use crate::{Cli, Command};

/// All targets healthy, report written, lint clean.
pub(crate) const OK: u8 = 0;
/// Findings: an unhealthy target, breaking drift, lint findings.
pub(crate) const FINDINGS: u8 = 1;
/// Operational error: I/O, unreadable snapshot, runtime failure.
pub(crate) const OPERATIONAL: u8 = 2;
/// Bad usage or configuration (sysexits `EX_USAGE`).
pub(crate) const USAGE: u8 = 64;

/// A usage error raised after argument parsing (a flag combination clap cannot express).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// Prints a clap error and maps it: help and version exit 0, everything else 64.
pub(crate) fn clap_error(err: clap::Error) -> ExitCode {
    let code = if err.use_stderr() { USAGE } else { OK };
    let _ = err.print();
    ExitCode::from(code)
}

/// Runs the subcommand on a multi-threaded tokio runtime and maps its outcome to an exit code.
pub(crate) fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(OPERATIONAL);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Check(args) => crate::check::run(args).await,
            Command::Gateway(args) => crate::gateway::run(args).await,
            Command::Monitor(args) => crate::monitor::run(args).await,
            Command::Scan(args) => crate::scan::run(args).await,
            Command::Lint(args) => crate::lint::run(args).await,
        }
    });
    // Don't wait for stray blocking tasks (a stdin reader, a resolver) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => report_error(&err),
    }
}

fn report_error(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::from(OK);
    }
    if let Some(usage) = err.downcast_ref::<UsageError>() {
        eprintln!("error: {usage}");
        return ExitCode::from(USAGE);
    }
    eprintln!("error: {err:#}");
    ExitCode::from(OPERATIONAL)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
