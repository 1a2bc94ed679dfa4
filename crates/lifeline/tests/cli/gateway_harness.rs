//! Shared helpers for the `gateway_*` modules of this test binary: start the built
//! `lifeline gateway` on ports the OS picks, signal it, talk to it with a tiny streaming HTTP/1.1 client that sees
//! SSE events as they arrive, and run the real clients (the Python SDK script in `tests/peers/clients/` and
//! `@modelcontextprotocol/inspector-cli`). Every wait is bounded.

#![allow(dead_code, unreachable_pub)]

use std::process::{Command, ExitStatus};
use std::time::Duration;

use lifeline_testkit::assert_eventually;
pub use lifeline_testkit::gateway::*;
pub use lifeline_testkit::mcp_http::*;
use lifeline_testkit::process::ChildGuard;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How long a gateway may take to start listening.
pub const START_PATIENCE: Duration = Duration::from_secs(30);

/// A running `lifeline gateway` process (its own process group, killed on drop).
pub struct Gw {
    pub guard: ChildGuard,
    /// `http://127.0.0.1:P`
    pub base: String,
    /// `http://127.0.0.1:Q`
    pub admin: String,
}

impl Gw {
    /// Like [`GatewayUnderTest::start_with`], with the gateway run by `wrapper` (e.g. `unshare --pid --fork` to make it PID 1).
    pub async fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Gw {
        let (flags, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => (&args[..i], &args[i..]),
            None => (args, &[][..]),
        };
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_lifeline"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_lifeline")),
        };
        cmd.arg("gateway")
            .args(flags)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(command)
            .env("LIFELINE_LOG", "info,lifeline_gateway=debug");
        let mut guard =
            ChildGuard::spawn("lifeline gateway", cmd).expect("the lifeline binary starts");
        let rest = guard
            .wait_for_output("\"message\":\"Gateway listening.\",", START_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Gw {
            base: format!("http://{}", json_field(&rest, "listen")),
            admin: format!("http://{}", json_field(&rest, "admin_listen")),
            guard,
        }
    }

    /// The client-side MCP endpoint.
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// Sends `sig` to the gateway process.
    pub fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.guard.pid() as i32), sig)
            .expect("signal the gateway");
    }

    /// Waits for the process to exit, at most `patience`.
    pub async fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        assert_eventually!(
            self.guard.try_status().is_some(),
            patience = patience,
            "the gateway did not exit within {patience:?}; output:\n{}",
            self.guard.output_tail()
        );
        // The exit status stays available once the child is reaped.
        self.guard.try_status().expect("the gateway exited")
    }

    /// The gateway's captured output.
    pub fn logs(&self) -> String {
        self.guard.output_tail()
    }
}

impl GatewayUnderTest for Gw {
    fn admin_base(&self) -> &str {
        &self.admin
    }

    fn captured_logs(&self) -> String {
        self.logs()
    }

    async fn start_with(args: &[&str]) -> Gw {
        Gw::start_wrapped(&[], args).await
    }
}

/// The value of `"name":"value"` in a JSON log line's tail.
pub fn json_field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    let start = line
        .find(&key)
        .map(|i| i + key.len())
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}
