//! The census benchmark (not a test): a loopback population shaped like the published census of 2,181 remote
//! MCP endpoints (about half accepting and then hanging until the timeout, a fifth refusing, the rest split
//! between healthy, auth-gated and broken), scanned by the real `lifeline scan` binary as a child process.
//! Prints wall time, probes per second, CPU seconds and peak RSS of the scan process, and the timeout-bound
//! minimum for the chosen concurrency.
//!
//! Run it through `scripts/bench-scan.sh` (builds the release binary, raises the open-file limit). Direct use:
//!
//! ```text
//! LIFELINE_BIN=target/release/lifeline cargo bench -p lifeline-scan --bench census -- \
//!     [--endpoints 2181] [--timeout 10s] [--concurrency 256] [--per-host 4] [--keep DIR]
//! ```
//!
//! Layout: every endpoint class gets its own loopback /16 and each listener its own address on port 8080
//! (`127.2.x.y` hang, `127.3.x.y` refuse — nothing listens there —, `127.4` healthy, `127.5` auth-gated,
//! `127.6` broken), so the per-host cap (one host = one address) does not serialise the run. Up to
//! [`MAX_LISTENERS`] listeners per class; beyond that endpoints share listeners through distinct query strings.
//! Healthy, auth-gated and broken listeners are TCP forwarders to the testkit's fake servers on 127.0.0.1.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts, ModernOpts};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};

/// Listeners per endpoint class at most.
const MAX_LISTENERS: usize = 2048;
/// The port every listener uses (each on its own address).
const PORT: u16 = 8080;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Hang,
    Refuse,
    Healthy,
    Auth,
    Broken,
}

impl Class {
    fn octet(self) -> u8 {
        match self {
            Class::Hang => 2,
            Class::Refuse => 3,
            Class::Healthy => 4,
            Class::Auth => 5,
            Class::Broken => 6,
        }
    }
}

struct Config {
    endpoints: usize,
    timeout: Duration,
    concurrency: usize,
    per_host: usize,
    keep: Option<PathBuf>,
    bin: PathBuf,
}

fn parse_args() -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cfg = Config {
        endpoints: 2181,
        timeout: Duration::from_secs(10),
        concurrency: 256,
        per_host: 4,
        keep: None,
        bin: std::env::var_os("LIFELINE_BIN")
            .map_or_else(|| root.join("target/release/lifeline"), PathBuf::from),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--endpoints" => cfg.endpoints = value().parse().expect("--endpoints N"),
            "--timeout" => {
                cfg.timeout = Duration::from_secs(
                    value()
                        .trim_end_matches('s')
                        .parse()
                        .expect("--timeout 10s"),
                )
            }
            "--concurrency" => cfg.concurrency = value().parse().expect("--concurrency N"),
            "--per-host" => cfg.per_host = value().parse().expect("--per-host N"),
            "--keep" => cfg.keep = Some(PathBuf::from(value())),
            "--bin" => cfg.bin = PathBuf::from(value()),
            // `cargo bench` passes --bench; ignore anything else it adds.
            _ => {}
        }
    }
    cfg
}

/// The census mix: 50% hang, 20% refuse, 9% healthy, 10% auth-gated, the rest broken.
fn mix(n: usize) -> Vec<(Class, usize)> {
    let hang = n / 2;
    let refuse = n / 5;
    let healthy = n * 9 / 100;
    let auth = n / 10;
    let broken = n - hang - refuse - healthy - auth;
    vec![
        (Class::Hang, hang),
        (Class::Refuse, refuse),
        (Class::Healthy, healthy),
        (Class::Auth, auth),
        (Class::Broken, broken),
    ]
}

fn address(class: Class, listener: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        class.octet(),
        (listener / 250) as u8,
        (listener % 250 + 1) as u8,
    )
}

fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((soft, hard));
        println!("open-file limit: {soft}");
    }
}

async fn hang_loop(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        });
    }
}

async fn forward_loop(listener: TcpListener, backend: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Deterministic shuffle (xorshift), so classes interleave as in a real list.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cfg = parse_args();
    assert!(
        cfg.bin.exists(),
        "{} not found: build it with `cargo build --release -p lifeline` or set LIFELINE_BIN",
        cfg.bin.display()
    );
    raise_nofile();

    // Backends for the forwarders.
    let mut backends: Vec<(Class, FakeServer)> = Vec::new();
    let pool = [
        (Class::Healthy, FakeKind::Healthy(HealthyOpts::default()), 6),
        (Class::Healthy, FakeKind::Modern(ModernOpts::default()), 2),
        (Class::Auth, FakeKind::AuthRequired { token: None }, 4),
        (Class::Broken, FakeKind::BadGateway502, 2),
        (Class::Broken, FakeKind::Html200, 2),
        (Class::Broken, FakeKind::InvalidJson, 1),
        (Class::Broken, FakeKind::RpcError, 1),
        (Class::Broken, FakeKind::UnsupportedVersion, 1),
        (Class::Broken, FakeKind::SessionLost, 1),
    ];
    for (class, kind, n) in pool {
        for _ in 0..n {
            backends.push((
                class,
                FakeServer::start(kind.clone())
                    .await
                    .expect("starting a fake backend"),
            ));
        }
    }

    let mut urls: Vec<String> = Vec::with_capacity(cfg.endpoints);
    let mut listeners = 0usize;
    let mut hangers = 0usize;
    let mut hang_hosts = 0usize;
    for (class, count) in mix(cfg.endpoints) {
        let hosts = count.min(MAX_LISTENERS);
        let class_backends: Vec<SocketAddr> = backends
            .iter()
            .filter(|(c, _)| *c == class)
            .map(|(_, f)| f.addr())
            .collect();
        for h in 0..hosts {
            let addr = SocketAddr::from((address(class, h), PORT));
            match class {
                Class::Refuse => {}
                Class::Hang => {
                    let l = TcpListener::bind(addr)
                        .await
                        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
                    tokio::spawn(hang_loop(l));
                    listeners += 1;
                }
                _ => {
                    let l = TcpListener::bind(addr)
                        .await
                        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
                    tokio::spawn(forward_loop(l, class_backends[h % class_backends.len()]));
                    listeners += 1;
                }
            }
        }
        if class == Class::Hang {
            hangers = count;
            hang_hosts = hosts;
        }
        for i in 0..count {
            let host = address(class, i % hosts);
            // Endpoints sharing a listener differ by query string, so deduplication keeps them apart.
            urls.push(if i < hosts {
                format!("http://{host}:{PORT}/mcp")
            } else {
                format!("http://{host}:{PORT}/mcp?n={i}")
            });
        }
    }
    shuffle(&mut urls);
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("endpoints.txt");
    std::fs::write(&list, urls.join("\n") + "\n").unwrap();
    let out_dir = cfg
        .keep
        .clone()
        .unwrap_or_else(|| work.path().join("report"));

    let t = cfg.timeout.as_secs_f64();
    let effective = cfg.concurrency.min(cfg.per_host * hang_hosts).max(1);
    let waves = hangers.div_ceil(effective).max(1);
    let minimum = waves as f64 * t;
    println!(
        "population: {} endpoints ({} hang, {} listeners on loopback); timeout {t}s, concurrency {}, per host {}",
        urls.len(),
        hangers,
        listeners,
        cfg.concurrency,
        cfg.per_host
    );

    let mut cmd = tokio::process::Command::new(&cfg.bin);
    cmd.arg("scan")
        .arg(&list)
        .args([
            "--allow-private",
            "--progress",
            "log",
            "--progress-interval",
            "10s",
            "--format",
            "json,csv,html",
        ])
        .arg("--timeout")
        .arg(format!("{}s", cfg.timeout.as_secs()))
        .arg("--concurrency")
        .arg(cfg.concurrency.to_string())
        .arg("--per-host")
        .arg(cfg.per_host.to_string())
        .arg("--out")
        .arg(&out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawning lifeline scan");
    let pid = child.id().expect("a running child");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s).await;
        s
    });
    // Sample the scan process's memory while it runs: VmHWM (its peak) and VmRSS per tenth of the run.
    let mut hwm_kib = 0u64;
    let mut rss_trace: Vec<(f64, u64)> = Vec::new();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.expect("waiting for lifeline scan"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if let Some(v) = proc_status_kib(pid, "VmHWM:") { hwm_kib = hwm_kib.max(v); }
                if let Some(v) = proc_status_kib(pid, "VmRSS:") {
                    let at = started.elapsed().as_secs_f64();
                    if rss_trace.last().is_none_or(|(t0, _)| at - t0 >= (minimum / 10.0).max(1.0)) {
                        rss_trace.push((at, v));
                    }
                }
            }
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let summary_text = reader.await.unwrap_or_default();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let cpu = tv(usage.user_time()) + tv(usage.system_time());
    let maxrss_mib = usage.max_rss() as f64 / 1024.0;

    println!("{summary_text}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("summary.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let count = |label: &str| {
        summary["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["label"] == label)
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
    };
    let m = mix(cfg.endpoints);
    let want = |c: Class| {
        m.iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, n)| *n as u64)
    };
    let counts_ok = count("healthy") == want(Class::Healthy)
        && count("auth_gated") == want(Class::Auth)
        && count("broken") == want(Class::Broken)
        && count("dead") == want(Class::Hang) + want(Class::Refuse);

    let mut report = String::new();
    let _ = writeln!(
        report,
        "==> census benchmark: {} endpoints, exit {:?}",
        urls.len(),
        status.code()
    );
    let _ = writeln!(report, "wall time            {wall:.1} s");
    let _ = writeln!(
        report,
        "probes per second    {:.1}",
        urls.len() as f64 / wall
    );
    let _ = writeln!(
        report,
        "CPU (user+sys)       {cpu:.1} s  ({:.0}% of one core)",
        cpu / wall * 100.0
    );
    let _ = writeln!(
        report,
        "peak RSS             {:.1} MiB (VmHWM), {maxrss_mib:.1} MiB (ru_maxrss)",
        hwm_kib as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "timeout-bound min    {minimum:.1} s = ceil({hangers} hangers / {effective} slots) x {t}s; wall/min = {:.2} (goal <= 1.5)",
        wall / minimum
    );
    let trace: Vec<String> = rss_trace
        .iter()
        .map(|(at, kib)| format!("{at:.0}s:{:.0}", *kib as f64 / 1024.0))
        .collect();
    let _ = writeln!(report, "RSS over time (MiB)  {}", trace.join(" "));
    let _ = writeln!(
        report,
        "category counts      {}",
        if counts_ok {
            "as generated"
        } else {
            "DIFFER from the generated mix (see summary)"
        }
    );
    if let Some(dir) = &cfg.keep {
        let _ = writeln!(report, "reports kept in      {}", dir.display());
    }
    print!("{report}");
    drop(backends);
}

fn tv(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}
