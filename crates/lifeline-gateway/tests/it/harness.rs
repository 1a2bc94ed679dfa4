//! The in-process [`TestGateway`]: a [`Gateway`] configured from the same CLI-style argument lists the binary
//! takes (parsed into [`RawConfig`] by clap), bound on `127.0.0.1:0` for both listeners, run on its own
//! multi-thread runtime in its own OS thread (so a stalled gateway runtime cannot stall the test's client), and
//! stopped through an injected [`Shutdown`] instead of OS signals. Every wait is bounded.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use lifeline_core::Shutdown;
use lifeline_gateway::{Gateway, RawConfig};
use lifeline_testkit::peers::raw_http::{self, RawResponse};

/// How long a gateway may take to bind.
const START_PATIENCE: Duration = Duration::from_secs(30);
/// How long the gateway's thread may take to end after a forced stop.
const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// Worker threads of the gateway's runtime (the production default on the 2-core CI machine).
const WORKERS: usize = 2;

/// `lifeline gateway`'s settings as clap parses them (every flag and `LIFELINE_*` variable of [`RawConfig`]).
#[derive(Debug, Parser)]
#[command(name = "gateway")]
struct Args {
    #[command(flatten)]
    settings: RawConfig,
}

/// A gateway running in this process (stopped, forced, on drop).
pub(crate) struct TestGateway {
    /// `http://127.0.0.1:P`
    pub(crate) base: String,
    /// `http://127.0.0.1:Q`
    pub(crate) admin: String,
    shutdown: Shutdown,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl TestGateway {
    /// Starts the gateway in front of `upstream` with `extra` flags.
    pub(crate) fn start(upstream: &str, extra: &[&str]) -> TestGateway {
        let mut args = vec!["--upstream", upstream];
        args.extend_from_slice(extra);
        TestGateway::start_with(&args)
    }

    /// Starts the gateway with `args` (flags as for `lifeline gateway`, which must name an upstream), both
    /// listeners on `127.0.0.1:0`. Panics (the test fails) on a flag clap rejects, an invalid configuration or
    /// a bind error.
    pub(crate) fn start_with(args: &[&str]) -> TestGateway {
        let (flags, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => (&args[..i], &args[i..]),
            None => (args, &[][..]),
        };
        let argv = std::iter::once("gateway")
            .chain(flags.iter().copied())
            .chain(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .chain(command.iter().copied());
        let settings = Args::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("gateway flags {args:?}: {e}"))
            .settings;
        let cfg = settings
            .validate(&|path| std::fs::read_to_string(path))
            .unwrap_or_else(|e| panic!("gateway config {args:?}: {e}"));
        let shutdown = Shutdown::new();
        let (addrs_tx, addrs_rx) = mpsc::channel::<(SocketAddr, SocketAddr)>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn({
            let shutdown = shutdown.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(WORKERS)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the gateway");
                runtime.block_on(async move {
                    let gateway = Gateway::bind(cfg).await.expect("bind on port 0");
                    let addrs = (
                        gateway.client_addr().expect("client addr"),
                        gateway.admin_addr().expect("admin addr"),
                    );
                    if addrs_tx.send(addrs).is_ok() {
                        gateway.run(shutdown).await;
                    }
                });
                // Tasks still running (connections cut at the deadline) end with the runtime, as in the binary.
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(());
            }
        });
        let (client, admin) = addrs_rx
            .recv_timeout(START_PATIENCE)
            .expect("the in-process gateway binds in time");
        TestGateway {
            base: format!("http://{client}"),
            admin: format!("http://{admin}"),
            shutdown,
            done,
            thread: Some(thread),
        }
    }

    /// The client-side MCP endpoint.
    pub(crate) fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// `GET` on the admin listener (10 s bound).
    pub(crate) async fn admin_get(&self, path: &str) -> RawResponse {
        raw_http::request(
            "GET",
            &format!("{}{path}", self.admin),
            &[],
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The Prometheus text.
    pub(crate) async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.text()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        // `abort` moves to `Phase::Forcing` with the "at once" mark, as a second signal does in the binary.
        self.shutdown.abort();
        // Bounded: a gateway that does not stop fails the test (unless it is already failing).
        let stopped = self.done.recv_timeout(STOP_PATIENCE).is_ok();
        if stopped {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else if !std::thread::panicking() {
            panic!("the in-process gateway did not stop within {STOP_PATIENCE:?}");
        }
    }
}

/// The value of an unlabelled metric sample, or of a labelled one written in full (`name{a="b"}`).
pub(crate) fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}
