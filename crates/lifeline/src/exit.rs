//! Exit codes and the rules that pick them; nothing here runs a subcommand (dispatch is in `main.rs`).
//!
//! 0 healthy/clean, 1 findings, 2 operational error, 64 usage (sysexits `EX_USAGE`). A broken pipe on stdout
//! exits quietly (0).
//!
//! After a stop signal (SIGTERM/SIGINT), one rule for every subcommand ([`after_signal`]): 0 once the drain is
//! over, whether it was clean, forced at its deadline or cut short by a second signal, because stopping on
//! request is what a service is for; 130 (SIGINT) or 143 (SIGTERM), 128 + the signal's number as shells do,
//! only when the signal left the subcommand's result partial, which today means `scan`'s partial report.
//! `check` and `lint` install no handlers: a signal ends them the default way.

use lifeline_core::SignalKind;

/// All targets healthy, report written, lint clean, a drain completed after a signal.
pub(crate) const OK: u8 = 0;
/// Findings: an unhealthy target, breaking drift, lint findings.
pub(crate) const FINDINGS: u8 = 1;
/// Operational error: I/O, unreadable snapshot, runtime failure.
pub(crate) const OPERATIONAL: u8 = 2;
/// Bad usage or configuration (sysexits `EX_USAGE`).
pub(crate) const USAGE: u8 = 64;
/// A partial result written after SIGINT (128 + 2).
pub(crate) const INTERRUPTED: u8 = 130;
/// A partial result written after SIGTERM (128 + 15).
pub(crate) const TERMINATED: u8 = 143;

/// A usage error raised after argument parsing (a flag combination clap cannot express).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// The exit code after the stop signal `signal` (the first one; a second changes nothing): [`OK`] unless the
/// signal left the result `partial`, then [`INTERRUPTED`] or [`TERMINATED`].
pub(crate) fn after_signal(signal: SignalKind, partial: bool) -> u8 {
    match (partial, signal) {
        (false, _) => OK,
        (true, SignalKind::Int) => INTERRUPTED,
        (true, SignalKind::Term) => TERMINATED,
    }
}

/// The code for a clap error: help and version exit 0, everything else [`USAGE`].
pub(crate) fn for_clap_error(err: &clap::Error) -> u8 {
    if err.use_stderr() {
        USAGE
    } else {
        OK
    }
}

/// The code for a subcommand's error: [`OK`] for a broken pipe (the reader went away), [`USAGE`] for a
/// [`UsageError`], [`OPERATIONAL`] otherwise.
pub(crate) fn for_error(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        OK
    } else if err.downcast_ref::<UsageError>().is_some() {
        USAGE
    } else {
        OPERATIONAL
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_after_a_signal() {
        for signal in [SignalKind::Term, SignalKind::Int] {
            assert_eq!(after_signal(signal, false), OK, "{signal:?}");
        }
        assert_eq!(after_signal(SignalKind::Int, true), 130);
        assert_eq!(after_signal(SignalKind::Term, true), 143);
    }

    #[test]
    fn errors_map_to_codes() {
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the report");
        assert_eq!(for_error(&pipe), OK);
        assert_eq!(
            for_error(&anyhow::Error::new(UsageError("bad".into()))),
            USAGE
        );
        assert_eq!(for_error(&anyhow::anyhow!("disk full")), OPERATIONAL);
    }
}
