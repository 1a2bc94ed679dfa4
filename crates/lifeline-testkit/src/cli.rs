//! Helpers for the tests that run the built `lifeline` binary and judge its exit code and output.

use std::process::Output;

/// The exit code.
///
/// # Panics
/// When the process was ended by a signal.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .expect("lifeline exited normally, not by a signal")
}

/// Standard output, lossily decoded.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error, lossily decoded.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code; the failure message shows both streams.
///
/// # Panics
/// When the code differs.
#[track_caller]
pub fn assert_exit(out: &Output, expected: i32) {
    assert_eq!(
        code(out),
        expected,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}
