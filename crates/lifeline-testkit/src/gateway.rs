//! What every gateway test needs of a running gateway, whether it runs in process (`lifeline-gateway`'s
//! `TestGateway`, `tests/it/harness.rs`) or as the built binary (the `lifeline` crate's `Gw`,
//! `tests/cli/gateway_harness.rs`): the admin endpoints, its captured logs, the stdio fake behind it, and the
//! readiness settings the stdio tests share. A harness implements the three required items (`admin_base`, `captured_logs`, `start_with`) of
//! [`GatewayUnderTest`] and gets the rest, so the two harnesses never carry copies of the same helpers.
//! Every wait is bounded; the helpers panic (failing the test) on anything unexpected.

use std::time::Duration;

use crate::assert_eventually;
use crate::fakes::stdio_fake_server;
use crate::mcp_http::py2_python;
use crate::peers::raw_http::{self, RawResponse};

/// The readiness flags of the stdio tests: a 15 s readiness timeout (Node and the Python SDK start slowly on a
/// loaded machine) and a 1 s cache, so a test sees a fresh answer soon.
pub const STDIO_READY_FLAGS: &[&str] = &["--ready-timeout", "15s", "--ready-ttl", "1s"];
/// How long a stdio test waits for `/ready`: a few readiness timeouts.
pub const STDIO_READY_PATIENCE: Duration = Duration::from_secs(40);
/// The bound of one admin request: above the longest `--ready-timeout` a test sets (15 s), because `/ready`
/// answers only when its probe ends (a slow child start on a loaded machine takes most of that timeout).
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for a line in the gateway's log (its output is read concurrently, so a line logged
/// before a response may not be captured yet when the response arrives).
pub const LOG_PATIENCE: Duration = Duration::from_secs(10);

/// A running gateway under test. Required: where its admin listener is, what it has logged, and how to start it
/// in front of a stdio command; provided: the admin calls and the bounded waits.
#[allow(async_fn_in_trait)] // test-only: the futures are awaited where they are made, never sent
pub trait GatewayUnderTest: Sized {
    /// The admin listener's base URL, `http://127.0.0.1:Q`.
    fn admin_base(&self) -> &str;

    /// The gateway's log output so far (JSON, one record a line).
    fn captured_logs(&self) -> String;

    /// Starts the gateway with `args` (flags as for `lifeline gateway`, which must name an upstream; a stdio
    /// command after `--`), both listeners on `127.0.0.1:0`, and waits until it listens.
    async fn start_with(args: &[&str]) -> Self;

    /// Starts the gateway in front of the HTTP `upstream` with `extra` flags.
    async fn start(upstream: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--upstream", upstream];
        args.extend_from_slice(extra);
        Self::start_with(&args).await
    }

    /// Starts the gateway in front of the stdio server `program args…` (after `--`) with `extra` flags.
    async fn start_stdio(program: &str, args: &[&str], extra: &[&str]) -> Self {
        let mut all: Vec<&str> = extra.to_vec();
        all.push("--");
        all.push(program);
        all.extend_from_slice(args);
        Self::start_with(&all).await
    }

    /// Starts the gateway in front of the testkit's misbehaving stdio fake ([`stdio_fake_server`], run by the
    /// Python SDK 2.x venv's interpreter) with `extra` flags.
    async fn start_stdio_fake(extra: &[&str]) -> Self {
        let script = stdio_fake_server();
        Self::start_stdio(&py2_python(), &[&script.to_string_lossy()], extra).await
    }

    /// `GET` on the admin listener, bounded by [`ADMIN_REQUEST_TIMEOUT`].
    async fn admin_get(&self, path: &str) -> RawResponse {
        self.try_admin_get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET` on the admin listener, bounded by [`ADMIN_REQUEST_TIMEOUT`]; the transport error as it is.
    async fn try_admin_get(&self, path: &str) -> std::io::Result<RawResponse> {
        let url = format!("{}{path}", self.admin_base());
        raw_http::request("GET", &url, &[], None, ADMIN_REQUEST_TIMEOUT).await
    }

    /// The Prometheus text of `/metrics`.
    async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.text()
    }

    /// Waits until `/ready` answers 200, at most `patience` (plus the request in flight then); an answer that
    /// does not come in time counts as "not yet". The failure names the last answer or error.
    async fn wait_ready(&self, patience: Duration) {
        let last = std::cell::RefCell::new(String::from("no answer yet"));
        assert_eventually!(
            match self.try_admin_get("/ready").await {
                Ok(r) => {
                    last.replace(format!("{}: {}", r.status, r.text()));
                    r.status == 200
                }
                Err(e) => {
                    last.replace(e.to_string());
                    false
                }
            },
            patience = patience,
            "/ready not 200 after {patience:?}; last: {}",
            last.borrow()
        );
    }

    /// Waits until the gateway's log contains `needle`, at most [`LOG_PATIENCE`].
    async fn wait_log(&self, needle: &str) {
        assert_eventually!(
            self.captured_logs().contains(needle),
            patience = LOG_PATIENCE,
            "the gateway logs {needle:?}"
        );
    }
}

/// Whether the process `pid` still exists (signal 0; a zombie counts as alive until it is reaped).
pub fn pid_alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}
