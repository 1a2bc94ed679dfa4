//! Benchmark (not a test): the latency and throughput the gateway adds, compared with nginx `proxy_pass` (the
//! floor for any proxy), over two upstreams in one run: a fast in-process one (the proxy's own cost; the latency
//! goals) and the official Python SDK server (a real MCP upstream; the throughput goal), plus the gateway's RSS
//! with 10,000 idle legacy sessions. One run prints every figure.
//!
//! ```text
//! cargo build --release -p lifeline            # the gateway under test (or set LIFELINE_BIN)
//! cargo bench -p lifeline-gateway --bench gateway
//! ```
//!
//! Knobs (environment): `BENCH_SECS` (measured seconds per path, default 10), `BENCH_CONCURRENCY` (connections,
//! default 8), `BENCH_SESSIONS` (idle sessions for the RSS figure, default 10000), `LIFELINE_BIN` (default
//! `target/release/lifeline`), `BENCH_SKIP_PEER=1` (only the fast upstream). nginx comes from Debian
//! (`scripts/install-peers.sh --apt nginx`); without it that row is skipped. Everything listens on 127.0.0.1.
//!
//! The upstream is in-process and deliberately trivial (a canned `tools/list` result, `initialize` minting a
//! session id), so what is measured is the proxy, not the MCP server. The load generator keeps `BENCH_CONCURRENCY`
//! HTTP/1.1 keep-alive connections busy with back-to-back `tools/list` POSTs and records every latency.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lifeline_testkit::process::{free_port, ChildGuard};
use tokio::net::TcpListener;

#[path = "support/loadgen.rs"]
mod loadgen;

use loadgen::{env_or, open_sessions, rss_kib, Handshake, Load, Run};

/// Starts `cmd` in its own process group, killed with it when the guard drops.
fn spawn(name: &str, cmd: Command) -> ChildGuard {
    ChildGuard::spawn(name, cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

async fn wait_port(addr: SocketAddr) {
    assert!(
        loadgen::wait_port(addr, Duration::from_secs(20)).await,
        "{addr} never listened"
    );
}

/// One measured path: `tools/list` without a session (the upstream needs none), 2 s warm-up.
async fn load(addr: SocketAddr, path: &str, concurrency: usize, secs: u64) -> Run {
    loadgen::load(&Load {
        addr,
        path: path.to_owned(),
        concurrency,
        warmup: Duration::from_secs(2),
        measured: Duration::from_secs(secs),
        handshake: Handshake::None,
        expect: Some("\"tools\""),
    })
    .await
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

// --- the contenders ----------------------------------------------------------------------------------------------

fn lifeline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIFELINE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("target/release/lifeline")
}

fn start_gateway(upstream: SocketAddr, listen: SocketAddr, admin: SocketAddr) -> ChildGuard {
    let bin = lifeline_bin();
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p lifeline` (or set LIFELINE_BIN)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg("gateway")
        .arg("--upstream")
        .arg(format!("http://{upstream}/mcp"))
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--admin-listen")
        .arg(admin.to_string())
        .args(["--max-sessions", "100000", "--ready-ttl", "60s"])
        .env("LIFELINE_LOG", "warn");
    spawn("lifeline gateway", cmd)
}

fn start_nginx(
    upstream: SocketAddr,
    listen: SocketAddr,
    dir: &std::path::Path,
) -> Option<ChildGuard> {
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
    let mut cmd = Command::new(nginx);
    cmd.arg("-c").arg(&path).arg("-p").arg(dir);
    Some(spawn("nginx", cmd))
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

/// The three paths over one upstream: direct, nginx, the gateway. The gateway process is kept running for the
/// RSS figure.
struct Comparison {
    direct: Run,
    nginx: Option<Run>,
    gateway: Run,
    gateway_proc: ChildGuard,
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
    /// Prints the three rows, then the goals that apply to this upstream: the latency goals where the upstream is
    /// fast (the proxy's own cost shows), the throughput goal where it is a real MCP server.
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
        let (lat_goal, tput_goal) = if latency_goals {
            (" (goal ≤ 0.2 / ≤ 2)", "")
        } else {
            ("", " (goal ≥ 90%)")
        };
        println!(
            "gateway added: p50 {:.3} ms, p99 {:.3} ms{lat_goal}; throughput {:.1}% of direct{tput_goal}",
            gw_p50 / 1000.0,
            gw_p99 / 1000.0,
            100.0 * gw.rps() / direct.rps()
        );
        // Against a slow upstream the added latency is noise around zero: a ratio of two such figures says nothing.
        if let (Some(n), true) = (&self.nginx, latency_goals) {
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
        println!(
            "machine: {} cores; the load generator, the upstream and the proxy share them\n",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        // 1. A fast upstream, so the proxy's own cost shows: the latency goals apply here. Its throughput ratio is
        //    bounded by the cores the proxy takes from the upstream and the load generator, for nginx too.
        println!("== upstream 1: in-process canned JSON on {up_addr} (measures the proxy's own cost)");
        let fast = compare(up_addr, concurrency, secs, &tmp).await;
        fast.print(true);

        let pid = fast.gateway_proc.pid();
        let before = rss_kib(pid).unwrap_or_default();
        let t = Instant::now();
        let opened = open_sessions(fast.gateway_addr, sessions, 32).await;
        let took = t.elapsed();
        // Let the allocator settle before reading RSS.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(pid).unwrap_or_default();
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
            let peer =
                lifeline_testkit::peers::Peer::python(lifeline_testkit::peers::PyServer::Stateless).await;
            println!(
                "\n== upstream 2: the Python SDK mcp 2.3.0, stateless, on {} (a real MCP server)",
                peer.addr
            );
            let real = compare(peer.addr, concurrency, secs, &tmp).await;
            real.print(false);
            drop(real);
            drop(peer);
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
}
