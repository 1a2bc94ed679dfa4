//! The in-process [`TestGateway`]: a [`Gateway`] configured from the same CLI-style argument lists the binary
//! takes (parsed into [`RawConfig`] by clap), bound on `127.0.0.1:0` for both listeners, run on its own
//! multi-thread runtime in its own OS thread (so a stalled gateway runtime cannot stall the test's client), and
//! stopped through an injected [`Shutdown`] instead of OS signals. Every wait is bounded. The MCP-over-HTTP
//! client helpers come from [`lifeline_testkit::mcp_http`] (re-exported here).
//!
//! Logs: the first gateway of a test installs a process-wide JSON `tracing` subscriber (filter
//! `info,lifeline_gateway=debug`, as the binary tests run it; the binary's `--log-format json` layout) writing into a bounded in-memory buffer, which
//! [`TestGateway::logs`] returns; nextest runs each test in its own process, so the buffer is the test's own.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use lifeline_core::Shutdown;
use lifeline_gateway::{Gateway, RawConfig};
pub(crate) use lifeline_testkit::gateway::*;
pub(crate) use lifeline_testkit::mcp_http::*;
use tokio::sync::oneshot;

/// How long a gateway may take to bind.
const START_PATIENCE: Duration = Duration::from_secs(30);
/// How long the gateway's thread may take to end after a forced stop.
const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// The most log bytes kept (the oldest are dropped beyond this).
const MAX_LOG_BYTES: usize = 4 << 20;

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
    /// Starts the gateway with `args` (flags as for `lifeline gateway`, which must name an upstream), both
    /// listeners on `127.0.0.1:0` (the client one on `--listen` when `args` has it). Panics (the test fails) on a flag clap rejects, an invalid configuration or
    /// a bind error.
    async fn spawn_with(args: &[&str]) -> TestGateway {
        TestGateway::spawn_with_file(None, args).await
    }

    /// Starts the gateway with the config file text `yaml` (YAML) under the flags `args`, as `lifeline gateway
    /// --config FILE ARGS…` layers them (file < flags), both listeners on `127.0.0.1:0`.
    pub(crate) async fn start_with_file(yaml: &str, args: &[&str]) -> TestGateway {
        TestGateway::spawn_with_file(Some(yaml), args).await
    }

    async fn spawn_with_file(file: Option<&str>, args: &[&str]) -> TestGateway {
        let (flags, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => (&args[..i], &args[i..]),
            None => (args, &[][..]),
        };
        // A test that must know the client port before the start (an OAuth resource URI) passes its own --listen.
        let listen: &[&str] = if flags.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let argv = std::iter::once("gateway")
            .chain(flags.iter().copied())
            .chain(listen.iter().copied())
            .chain(["--admin-listen", "127.0.0.1:0"])
            .chain(command.iter().copied());
        let mut settings = Args::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("gateway flags {args:?}: {e}"))
            .settings;
        if let Some(yaml) = file {
            settings = RawConfig::parse(yaml, lifeline_gateway::FileFormat::Yaml)
                .unwrap_or_else(|e| panic!("gateway config file: {e}\n{yaml}"))
                .merge(settings);
        }
        let cfg = settings
            .validate(&|path| std::fs::read_to_string(path))
            .unwrap_or_else(|e| panic!("gateway config {args:?}: {e}"));
        capture_logs();
        let shutdown = Shutdown::new();
        let (addrs_tx, addrs_rx) = oneshot::channel::<(SocketAddr, SocketAddr)>();
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
        let (client, admin) = tokio::time::timeout(START_PATIENCE, addrs_rx)
            .await
            .expect("the in-process gateway binds in time")
            .expect("the in-process gateway binds");
        TestGateway {
            base: format!("http://{client}"),
            admin: format!("http://{admin}"),
            shutdown,
            done,
            thread: Some(thread),
        }
    }

    /// The gateway's log lines so far (JSON, one a line; this process's, see the module docs).
    pub(crate) fn logs(&self) -> String {
        let buf = log_buffer().lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The client-side MCP endpoint.
    pub(crate) fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// Moves the gateway's lifecycle to `phase`, as a SIGTERM's drain does (`Phase::Refusing`: new sessions get
    /// 503, idle sessions are ended and get 404).
    pub(crate) fn advance(&self, phase: lifeline_core::Phase) {
        self.shutdown.advance(phase);
    }
}

impl GatewayUnderTest for TestGateway {
    fn admin_base(&self) -> &str {
        &self.admin
    }

    fn captured_logs(&self) -> String {
        self.logs()
    }

    async fn start_with(args: &[&str]) -> TestGateway {
        TestGateway::spawn_with(args).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        // `abort` moves to `Phase::Forcing` with the "at once" mark, as a second signal does in the binary.
        self.shutdown.abort();
        // Bounded: the teardown never hangs a test (the binary tests' `ChildGuard` kills without waiting; this
        // waits so a stdio child is reaped before the next gateway of the same test starts).
        if self.done.recv_timeout(STOP_PATIENCE).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            eprintln!("the in-process gateway did not stop within {STOP_PATIENCE:?}; left to the process exit");
        }
    }
}

/// The process's captured log bytes.
fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Installs the capturing subscriber once per process (a no-op when one is installed already).
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,lifeline_gateway=debug",
            ))
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Appends to [`log_buffer`], keeping at most [`MAX_LOG_BYTES`].
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = log_buffer().lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() > MAX_LOG_BYTES {
            let excess = buf.len() - MAX_LOG_BYTES;
            buf.drain(..excess);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
