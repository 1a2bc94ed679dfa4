//! Benchmark (not a test): 10,000 targets at a 60 s interval against cheap local MCP endpoints (the testkit's
//! modern fake, one listener per target, in a child process so this process is the monitor alone), with 90 days
//! of simulated history loaded through the store's rollup path. Prints the monitor process's CPU (% of one
//! core), RSS, the database size and the p95 of `/`, `/api/v1/targets` and one target's page, against the goals.
//! That target also gets 48 h of raw results at a 5 s interval with phase timings (34,560 rows: the most its
//! page's phase chart reads is 20,000), so its page is measured at its worst.
//!
//! Of the targets, BENCH_TRANSACTIONS (1,000) also carry a two-step synthetic transaction (two `tools/call echo`,
//! the second with a value saved from the first, CEL assertions) at a 5 min interval: each is a transaction
//! target of its own, as `targets[].transactions` makes it (issue 13).
//!
//! `cargo bench -p lifeline-monitor --bench monitor_10k`; knobs: BENCH_TARGETS (10000), BENCH_DAYS (90),
//! BENCH_SECONDS (120, the CPU measurement window after a 30 s warm-up), BENCH_REQUESTS (200 per page),
//! BENCH_TRANSACTIONS (1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_core::{Phase, Shutdown};
use lifeline_monitor::store::{IncidentOp, ProbeRow, RecordOp, TargetState};
use lifeline_monitor::{Config, McpProber, Monitor, Store, TargetConfig};

mod common;
use common::{knob, now_ms};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes harness=false benches
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if common::is_endpoints_child() {
        rt.block_on(common::endpoints());
    } else {
        rt.block_on(monitor());
    }
}

/// The two-step transaction a bench target carries, as a transaction target (`<target>.echo2`) the way
/// `targets[].transactions` expands it. The fake's `echo` declares no `readOnlyHint`, hence
/// `allow_side_effects`.
fn transaction_target(parent: &TargetConfig) -> TargetConfig {
    use lifeline_mcp::transaction::TransactionSet;
    const SET: &str = r#"
allow_tools: [echo]
allow_side_effects: true
transactions:
  - name: echo2
    interval: 5m
    timeout: 10s
    steps:
      - tool: echo
        arguments: { message: lifeline-canary }
        expect: ['size(result.content) > 0']
        save: { said: 'result.content[0].text' }
      - tool: echo
        arguments: { message: '${said}' }
        expect: ['result.content[0].text.contains("lifeline-canary")']
"#;
    let set = TransactionSet::from_yaml(SET).expect("the bench transaction is valid");
    let t = &set.transactions[0];
    let mut target = parent.clone();
    target.name = format!("{}.{}", parent.name, t.name);
    target.interval = t.interval.expect("set above");
    target.timeout = parent.timeout + t.timeout;
    target.transaction = Some(lifeline_monitor::config::TransactionJob {
        parent: parent.name.clone(),
        name: t.name.clone(),
        set: Arc::new(set.clone()),
    });
    target
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12] (proc(5) fields 14 and 15).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.95).ceil() as usize)
        .saturating_sub(1)
        .min(v.len() - 1)]
}

/// 48 h of healthy results at a 5 s interval, each with phase timings, for target `id`: the raw window at its
/// densest. Returns the rows written.
async fn dense_raw_window(store: &Store, id: i64, (name, url): &(String, String)) -> usize {
    let now = now_ms();
    let state = TargetState {
        id,
        name: name.clone(),
        url: url.clone(),
        ..TargetState::default()
    };
    let mut written = 0;
    for chunk in (0..48 * 720_i64).collect::<Vec<_>>().chunks(1000) {
        let ops: Vec<RecordOp> = chunk
            .iter()
            .map(|i| RecordOp {
                state: state.clone(),
                tools_json: None,
                result: ProbeRow {
                    up: true,
                    latency_ms: Some(40.0),
                    timings: Some(
                        r#"{"dns":0.1,"connect":0.4,"first_byte":1.2,"discover":9.5,"tools_list":3.1,"close":0.5,"total":40}"#
                            .to_owned(),
                    ),
                    ..ProbeRow::new(now - 1000 - i * 5000, lifeline_mcp::Verdict::Healthy)
                },
                events: vec![],
                incident: IncidentOp::None,
            })
            .collect();
        store.record(&ops).await.expect("raw results");
        written += ops.len();
    }
    written
}

async fn monitor() {
    let n = knob("BENCH_TARGETS", 10_000);
    let days = knob("BENCH_DAYS", 90) as i64;
    let window = knob("BENCH_SECONDS", 120);
    let requests = knob("BENCH_REQUESTS", 200);

    let (_guard, urls) = common::spawn_endpoints();

    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("bench.db");
    let storage = format!("sqlite://{}", db_path.display());
    let mut config = Config::from_yaml("listen: 127.0.0.1:0\n", &|_| None).expect("config");
    config.storage.clone_from(&storage);
    config.targets = urls
        .iter()
        .enumerate()
        .map(|(i, u)| TargetConfig::new(format!("t{i:05}"), url::Url::parse(u).expect("url")))
        .collect();
    let with_transactions = knob("BENCH_TRANSACTIONS", 1_000).min(n) as usize;
    let transaction_targets: Vec<TargetConfig> = config.targets[..with_transactions]
        .iter()
        .map(transaction_target)
        .collect();
    config.targets.extend(transaction_targets);
    println!("transactions: {with_transactions} targets carry a two-step transaction at 5 min");

    let t = Instant::now();
    let store = Store::connect(&storage).await.expect("store");
    let (names, ids, rows) = common::seed_history(&store, &config.targets, days).await;
    let raw = dense_raw_window(&store, ids[0], &names[0]).await;
    let loaded_size = store.size_bytes().await.unwrap_or(0);
    store.close().await;
    println!(
        "raw window: {raw} results with phase timings for {}",
        names[0].0
    );
    println!(
        "history: {rows} hourly rollups ({days} days × {n} targets) through apply_hourly in {:.1}s, DB {:.1} MiB",
        t.elapsed().as_secs_f64(),
        loaded_size as f64 / 1048576.0
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let monitor = Monitor::new(config, Arc::new(McpProber), "bench")
        .await
        .expect("monitor");
    let shutdown = Shutdown::new();
    let task = tokio::spawn(monitor.run(listener, shutdown.clone()));

    let warmup = Duration::from_secs(30);
    tokio::time::sleep(warmup).await;
    let (c0, w0) = (cpu_ticks(), Instant::now());
    let mut rss_max = 0;
    while w0.elapsed() < Duration::from_secs(window) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(status_kib("VmRSS:"));
    }
    let ticks = cpu_ticks() - c0;
    let cpu_pct = ticks as f64 / 100.0 / w0.elapsed().as_secs_f64() * 100.0;

    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let sum = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let probes = sum("lifeline_monitor_probes_total{");
    let healthy = sum("lifeline_monitor_probes_total{verdict=\"healthy\"}");
    let skipped = sum("lifeline_monitor_probes_skipped_total");

    let mut lat = Vec::new();
    let target_page = format!("/targets/{}", names[0].0);
    for path in ["/", "/api/v1/targets", target_page.as_str()] {
        let mut v = Vec::with_capacity(requests as usize);
        let mut bytes = 0;
        for _ in 0..requests {
            let t = Instant::now();
            let body = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
        lat.push((path, p95(v), bytes));
    }
    let db_bytes: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db_path.display())).ok())
        .map(|m| m.len())
        .sum();
    let rss_peak = status_kib("VmHWM:");
    shutdown.advance(Phase::Refusing);
    let _ = tokio::time::timeout(Duration::from_secs(60), task).await;

    let goal = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!("\n== lifeline monitor benchmark: {n} targets at 60 s, {days} days of history ==");
    println!("probes during the run: {probes:.0} ({healthy:.0} healthy, {skipped:.0} skipped for overlap)");
    println!(
        "monitor CPU:  {cpu_pct:.1}% of one core over {window}s   goal < 25%   {}",
        goal(cpu_pct < 25.0)
    );
    println!(
        "monitor RSS:  {:.0} MiB (window max), {:.0} MiB peak incl. history load   goal < 300 MiB   {}",
        rss_max as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        goal(rss_max < 300 * 1024)
    );
    println!(
        "database:     {:.1} MiB   goal < 1024 MiB   {}",
        db_bytes as f64 / 1048576.0,
        goal(db_bytes < 1 << 30)
    );
    for (path, p, bytes) in lat {
        println!(
            "GET {path:<16} p95 {p:.1} ms over {requests} requests ({} KiB)   goal < 300 ms   {}",
            bytes / 1024,
            goal(p < 300.0)
        );
    }
}
