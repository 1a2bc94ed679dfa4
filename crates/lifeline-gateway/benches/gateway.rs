//! Benchmark (not a test): the latency and throughput the gateway adds, against the same fast local upstream,
//! compared with nginx `proxy_pass` (the floor for any proxy), plus the gateway's RSS with 10,000 idle legacy
//! sessions. One run prints every figure.
//!
//! ```text
//! cargo build --release -p lifeline            # the gateway under test (or set LIFELINE_BIN)
//! cargo bench -p lifeline-gateway --bench gateway
//! ```
//!
//! Knobs (environment): `BENCH_SECS` (measured seconds per path, default 10), `BENCH_CONCURRENCY` (connections,
//! default 8), `BENCH_SESSIONS` (idle sessions for the RSS figure, default 10000), `LIFELINE_BIN` (default
//! `target/release/lifeline`). nginx comes from Debian (`scripts/install-peers.sh --apt nginx`); without it that
//! row is skipped. Everything listens on 127.0.0.1.
//!
//! The upstream is in-process and deliberately trivial (a canned `tools/list` result, `initialize` minting a
//! session id), so what is measured is the proxy, not the MCP server. The load generator keeps `BENCH_CONCURRENCY`
//! HTTP/1.1 keep-alive connections busy with back-to-back `tools/list` POSTs and records every latency.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("addr").port()
}

/// A child process killed (with its group) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Proc {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
    )
}

async fn wait_port(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- the fast upstream -------------------------------------------------------------------------------------------

async fn upstream_handle(
    req: Request<hyper::body::Incoming>,
    sessions: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    static RESULT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","description":"Echoes the message back.","inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}},{"name":"add","description":"Adds two numbers.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}}]}}"#;
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = |s: &'static str| {
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(s.as_bytes())))
            .expect("a static response")
    };
    if method == hyper::Method::DELETE {
        return Ok(json("{}"));
    }
    if body.windows(12).any(|w| w == b"\"initialize\"") {
        let n = sessions.fetch_add(1, Ordering::Relaxed);
        let mut resp = json(
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench-upstream","version":"1"}}}"#,
        );
        let sid = format!("{:032x}", u128::from(n) * 0x9E37_79B9_7F4A_7C15);
        resp.headers_mut().insert(
            "mcp-session-id",
            sid.parse().expect("hex is a header value"),
        );
        return Ok(resp);
    }
    if body.windows(14).any(|w| w == b"notifications/") {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::ACCEPTED;
        return Ok(r);
    }
    Ok(json(RESULT))
}

async fn serve_upstream(listener: TcpListener) {
    let sessions = Arc::new(AtomicU64::new(1));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let sessions = Arc::clone(&sessions);
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| upstream_handle(req, Arc::clone(&sessions)));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

// --- the load generator ------------------------------------------------------------------------------------------

struct Run {
    requests: u64,
    errors: u64,
    secs: f64,
    /// Latencies in nanoseconds, sorted.
    lat: Vec<u64>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i] as f64 / 1000.0
    }
}

async fn one_connection(
    addr: SocketAddr,
    path: String,
    body: &'static str,
    until: Instant,
    warm_until: Instant,
) -> (u64, u64, Vec<u64>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::with_capacity(200_000));
    let host = addr.to_string();
    while Instant::now() < until {
        let req = Request::post(path.as_str())
            .header("host", host.as_str())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("a request");
        let start = Instant::now();
        let good = match sender.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let ok = resp.into_body().collect().await.is_ok() && status.is_success();
                if !ok {
                    eprintln!("{addr}: HTTP {status}");
                }
                ok
            }
            Err(e) => {
                eprintln!("{addr}: {e}");
                false
            }
        };
        let ns = start.elapsed().as_nanos() as u64;
        if start < warm_until {
            continue;
        }
        if good {
            ok += 1;
            lat.push(ns);
        } else {
            errors += 1;
            break;
        }
    }
    (ok, errors, lat)
}

async fn load(addr: SocketAddr, path: &str, concurrency: usize, secs: u64) -> Run {
    let warm = Duration::from_secs(2);
    let start = Instant::now();
    let warm_until = start + warm;
    let until = warm_until + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        set.spawn(one_connection(
            addr,
            path.to_owned(),
            TOOLS_LIST,
            until,
            warm_until,
        ));
    }
    let mut run = Run {
        requests: 0,
        errors: 0,
        secs: secs as f64,
        lat: Vec::new(),
    };
    while let Some(r) = set.join_next().await {
        let (ok, errors, lat) = r.expect("load task");
        run.requests += ok;
        run.errors += errors;
        run.lat.extend(lat);
    }
    run.lat.sort_unstable();
    run
}

// --- the contenders ----------------------------------------------------------------------------------------------

fn lifeline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIFELINE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("target/release/lifeline")
}

fn start_gateway(upstream: SocketAddr, listen: SocketAddr, admin: SocketAddr) -> Proc {
    let bin = lifeline_bin();
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p lifeline` (or set LIFELINE_BIN)",
        bin.display()
    );
    spawn(
        Command::new(bin)
            .arg("gateway")
            .arg("--upstream")
            .arg(format!("http://{upstream}/mcp"))
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(["--max-sessions", "100000", "--ready-ttl", "60s"])
            .env("LIFELINE_LOG", "warn"),
    )
}

fn start_nginx(upstream: SocketAddr, listen: SocketAddr, dir: &std::path::Path) -> Option<Proc> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 2;\ndaemon off;\nmaster_process on;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
events {{ worker_connections 4096; }}\n\
http {{\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  upstream mcp {{ server {upstream}; keepalive 64; }}\n\
  server {{\n    listen {listen};\n    location / {{\n      proxy_pass http://mcp;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n      proxy_buffering off;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    Some(spawn(
        Command::new(nginx).arg("-c").arg(&path).arg("-p").arg(dir),
    ))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn open_sessions(addr: SocketAddr, count: usize) -> usize {
    let per = 32usize;
    let done = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..per {
        let done = Arc::clone(&done);
        let n = count / per + usize::from(w < count % per);
        set.spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            for _ in 0..n {
                let req = Request::post("/mcp")
                    .header("host", addr.to_string())
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(Full::new(Bytes::from_static(INIT.as_bytes())))
                    .expect("request");
                if let Ok(resp) = sender.send_request(req).await {
                    if resp.headers().contains_key("mcp-session-id") {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = resp.into_body().collect().await;
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    done.load(Ordering::Relaxed) as usize
}

fn print_row(name: &str, run: &Run, direct: &Run) {
    println!(
        "{name:<10} {:>10.0} req/s {:>6.1}% of direct   p50 {:>8.1} µs (+{:>6.1})   p99 {:>8.1} µs (+{:>7.1})   errors {}",
        run.rps(),
        100.0 * run.rps() / direct.rps(),
        run.pct(0.50),
        run.pct(0.50) - direct.pct(0.50),
        run.pct(0.99),
        run.pct(0.99) - direct.pct(0.99),
        run.errors
    );
}

/// The three paths over one upstream: direct, nginx, the gateway. Returns the runs and the gateway process (still
/// running, for the RSS figure).
struct Comparison {
    direct: Run,
    nginx: Option<Run>,
    gateway: Run,
    gateway_proc: Proc,
    gateway_addr: SocketAddr,
}

async fn compare(
    up_addr: SocketAddr,
    concurrency: usize,
    secs: u64,
    tmp: &std::path::Path,
) -> Comparison {
    let direct = load(up_addr, "/mcp", concurrency, secs).await;

    let nginx_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let nginx = start_nginx(up_addr, nginx_addr, tmp);
    let nginx_run = match &nginx {
        Some(_) => {
            wait_port(nginx_addr).await;
            Some(load(nginx_addr, "/mcp", concurrency, secs).await)
        }
        None => None,
    };
    drop(nginx);

    let gw_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let gw = start_gateway(up_addr, gw_addr, admin_addr);
    wait_port(gw_addr).await;
    let gw_run = load(gw_addr, "/mcp", concurrency, secs).await;
    Comparison {
        direct,
        nginx: nginx_run,
        gateway: gw_run,
        gateway_proc: gw,
        gateway_addr: gw_addr,
    }
}

impl Comparison {
    /// Prints the three rows, then the goals that apply to this upstream.
    fn print(&self, latency_goals: bool) {
        let (direct, gw) = (&self.direct, &self.gateway);
        println!(
            "{:<10} {:>10.0} req/s                  p50 {:>8.1} µs            p99 {:>8.1} µs            errors {}",
            "direct",
            direct.rps(),
            direct.pct(0.50),
            direct.pct(0.99),
            direct.errors
        );
        match &self.nginx {
            Some(n) => print_row("nginx", n, direct),
            None => {
                println!("nginx      skipped (not installed: scripts/install-peers.sh --apt nginx)")
            }
        }
        print_row("gateway", gw, direct);
        let gw_p50 = gw.pct(0.50) - direct.pct(0.50);
        let gw_p99 = gw.pct(0.99) - direct.pct(0.99);
        println!();
        if latency_goals {
            println!(
                "gateway added: p50 {:.3} ms (goal ≤ 0.2), p99 {:.3} ms (goal ≤ 2), throughput {:.1}% of direct",
                gw_p50 / 1000.0,
                gw_p99 / 1000.0,
                100.0 * gw.rps() / direct.rps()
            );
        } else {
            println!(
                "gateway added: p50 {:.3} ms, p99 {:.3} ms, throughput {:.1}% of direct (goal ≥ 90%)",
                gw_p50 / 1000.0,
                gw_p99 / 1000.0,
                100.0 * gw.rps() / direct.rps()
            );
        }
        if let Some(n) = &self.nginx {
            let ng_p50 = n.pct(0.50) - direct.pct(0.50);
            let ng_p99 = n.pct(0.99) - direct.pct(0.99);
            println!(
                "gateway vs nginx added latency: p50 {:.2}x, p99 {:.2}x{}; throughput {:.2}x nginx",
                gw_p50 / ng_p50,
                gw_p99 / ng_p99,
                if latency_goals {
                    " (goal ≤ 1.5x)"
                } else {
                    ""
                },
                gw.rps() / n.rps()
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other filter argument is ignored.
    let secs: u64 = env_or("BENCH_SECS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);
    let sessions: usize = env_or("BENCH_SESSIONS", 10_000);

    // The upstream gets its own single-threaded runtime; the load generator another.
    let up_listener = StdListener::bind("127.0.0.1:0").expect("bind upstream");
    up_listener.set_nonblocking(true).expect("nonblocking");
    let up_addr = up_listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("upstream runtime");
        rt.block_on(async move {
            serve_upstream(TcpListener::from_std(up_listener).expect("tokio listener")).await;
        });
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    let tmp = std::env::temp_dir().join(format!("lifeline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");

    rt.block_on(async {
        println!("lifeline gateway benchmark: tools/list, {concurrency} keep-alive connections, {secs}s per path (after 2s warm-up)");
        println!("machine: {} cores; the load generator, the upstream and the proxy share them\n", std::thread::available_parallelism().map_or(0, |n| n.get()));

        // 1. A fast upstream, so the proxy's own cost shows: the latency goals apply here. Its throughput ratio is
        //    bounded by the cores the proxy takes from the upstream and the load generator, for nginx too.
        println!("== upstream 1: in-process canned JSON on {up_addr} (measures the proxy's own cost)");
        let fast = compare(up_addr, concurrency, secs, &tmp).await;
        fast.print(true);

        let gw = &fast.gateway_proc;
        let before = rss_kib(gw.0.id()).unwrap_or_default();
        let t = Instant::now();
        let opened = open_sessions(fast.gateway_addr, sessions).await;
        let took = t.elapsed();
        // Let the allocator settle before reading RSS.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(gw.0.id()).unwrap_or_default();
        println!(
            "\nRSS: {:.1} MiB after the runs, {:.1} MiB with {opened} idle legacy sessions open (goal ≤ 150 MiB; opened in {:.1}s)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            took.as_secs_f64()
        );
        drop(fast);

        // 2. A real MCP server (the official Python SDK, stateless), the kind of upstream the gateway fronts: the
        //    throughput goal applies here, where the upstream and not the proxy should be the bottleneck.
        if std::env::var("BENCH_SKIP_PEER").as_deref() == Ok("1") {
            println!("\n== upstream 2 skipped (BENCH_SKIP_PEER=1)");
        } else {
            let peer = lifeline_testkit::peers::Peer::python(lifeline_testkit::peers::PyServer::Stateless).await;
            println!("\n== upstream 2: the Python SDK mcp 2.3.0, stateless, on {} (a real MCP server)", peer.addr);
            let real = compare(peer.addr, concurrency, secs, &tmp).await;
            real.print(false);
            drop(real);
            drop(peer);
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
}
