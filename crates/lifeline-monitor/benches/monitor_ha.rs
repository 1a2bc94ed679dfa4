//! Benchmark (not a test): `monitor_10k` with 1, 2 and 3 replicas, each a separate `lifeline monitor` process
//! (the release binary), on one PostgreSQL. BENCH_TARGETS (10,000) targets at a 60 s interval against the
//! testkit's modern fake (one listener per target, in a child process), with BENCH_DAYS (90) days of hourly
//! rollups seeded through the store's rollup path. For each replica count it measures, over a BENCH_SECONDS
//! window after every shard is held: CPU-seconds per replica (utime + stime from `/proc/<pid>/stat`) and the
//! result rows written per second. Then, with the largest replica count, BENCH_FAILOVERS (10) times: `kill -9`
//! of the holder of one target's shard, and the time from the kill to the first result of that target under a
//! newer epoch (the new owner), against the goal ttl + interval; a fresh replica replaces the killed one.
//! Finally the database size: measured, and projected to 90 days of 10,000 targets from measured per-unit sizes:
//! bytes per target-day of rollups (the seeded history), and, in a second database of BENCH_TARGETS targets
//! holding BENCH_RAW_HOURS (2) hours of raw results at the interval (≥ 1 M rows at the defaults, each a copy of
//! a real result of the run with its latency varied), bytes per raw result, then the same hours rolled up and
//! thinned by the store's rollup: the rows kept and the `phase_hours` bytes per target-hour.
//!
//! Needs `DATABASE_URL` (an admin URL: `eval "$(scripts/postgres.sh start)"`), `psql`, and the release binary
//! (`cargo build --release -p lifeline`; LIFELINE_BIN overrides its path). Creates and drops its own database.
//!
//! `cargo bench -p lifeline-monitor --bench monitor_ha`; knobs: BENCH_TARGETS (10000), BENCH_DAYS (90),
//! BENCH_SECONDS (120), BENCH_REPLICAS (3: runs 1..=N), BENCH_FAILOVERS (10), BENCH_TTL (15, the lease ttl in
//! seconds), BENCH_INTERVAL (60 s).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeline_monitor::store::shard_of;
use lifeline_monitor::{Store, TargetConfig};

mod common;
use common::{knob, now_ms, Guard};

/// Every wait in this bench gives up after this long.
const PATIENCE: Duration = Duration::from_secs(600);

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
        rt.block_on(bench());
    }
}

fn psql_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from("psql"))
}

/// Runs `sql` on `url` with psql; its unaligned output, trimmed. Panics with psql's error (a bench, not a test).
fn sql(url: &str, sql: &str) -> String {
    let out = Command::new(psql_bin())
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn int(url: &str, q: &str) -> i64 {
    sql(url, q).parse().unwrap_or(0)
}

/// CPU ticks (utime + stime, USER_HZ = 100) of process `pid`, 0 once it is gone.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn lifeline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LIFELINE_BIN") {
        return PathBuf::from(p);
    }
    // target/release/deps/monitor_ha-… → target/release/lifeline
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("lifeline"))
        .expect("target dir")
}

/// A `lifeline monitor` replica, its log in `log`.
struct Replica {
    guard: Guard,
    log: PathBuf,
}

/// The last "Taking free or expired shards" line of the log at `path` whose `shards` list has `shard`, without
/// its ANSI colours.
fn taking_line(path: &Path, shard: u32) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .rev()
        .filter(|l| l.contains("Taking free or expired shards"))
        .find(|l| {
            l.split_once("shards=[")
                .and_then(|(_, r)| r.split_once(']'))
                .is_some_and(|(list, _)| list.split(", ").any(|v| v == shard.to_string()))
        })
        .map(|l| l.trim().to_owned())
}

impl Replica {
    fn start(config: &Path, log: &Path) -> Replica {
        use std::os::unix::process::CommandExt as _;
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(lifeline_bin())
            .args(["monitor", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("lifeline monitor (build it: cargo build --release -p lifeline)");
        Replica {
            guard: Guard(child),
            log: log.to_owned(),
        }
    }
    fn pid(&self) -> u32 {
        self.guard.0.id()
    }
    fn owner_matches(&self, owner: &str) -> bool {
        owner.ends_with(&format!("-{}", self.pid()))
    }
}

/// Waits (bounded) until every shard is held, unexpired, by one of `replicas`, each holding at least its fair
/// share less one (the fair share is `ceil(128 / replicas)`).
fn wait_spread(url: &str, replicas: &[Replica]) -> Duration {
    let t = Instant::now();
    loop {
        for r in replicas {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", r.pid())).unwrap_or_default();
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.get(..1));
            assert!(
                matches!(state, Some(s) if s != "Z" && s != "X"),
                "replica {} exited: see its log in the bench's temporary directory",
                r.pid()
            );
        }
        let owners = sql(
            url,
            "SELECT coalesce(owner, '') FROM shard_leases \
             WHERE expires_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint",
        );
        let owners: Vec<&str> = owners.lines().collect();
        let all_live = owners.len() == 128
            && owners
                .iter()
                .all(|o| replicas.iter().any(|r| r.owner_matches(o)));
        let share = 128_usize.div_ceil(replicas.len().max(1));
        let each = replicas
            .iter()
            .all(|r| owners.iter().filter(|o| r.owner_matches(o)).count() + 1 >= share);
        if all_live && each {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < PATIENCE,
            "shards not spread over {} replicas",
            replicas.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

struct Run {
    replicas: usize,
    cpu_s: Vec<f64>,
    window_s: f64,
    rows_per_s: f64,
}

async fn bench() {
    let n = knob("BENCH_TARGETS", 10_000);
    let days = knob("BENCH_DAYS", 90) as i64;
    let window = knob("BENCH_SECONDS", 120);
    let max_replicas = knob("BENCH_REPLICAS", 3).max(1) as usize;
    let failovers = knob("BENCH_FAILOVERS", 10);
    let ttl = knob("BENCH_TTL", 15).max(1);
    let interval = knob("BENCH_INTERVAL", 60).max(5);
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL: start one with `eval \"$(scripts/postgres.sh start)\"`");
    let bin = lifeline_bin();
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p lifeline (or set LIFELINE_BIN)",
        bin.display()
    );

    let (_endpoints, urls) = common::spawn_endpoints();

    let name = format!("lifeline_bench_ha_{}", std::process::id());
    sql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    sql(&admin, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').expect("a database path");
    let url = format!("{base}/{name}");

    // Seed: the targets and their rollup history, as monitor_10k does, through the store.
    let targets: Vec<TargetConfig> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| TargetConfig::new(format!("t{i:05}"), url::Url::parse(u).expect("url")))
        .collect();
    let t = Instant::now();
    let store = Store::connect(&url).await.expect("store");
    let empty = store.size_bytes().await.unwrap_or(0);
    let (_, _, rollups) = common::seed_history(&store, &targets, days).await;
    store.close().await;
    sql(&url, "VACUUM ANALYZE");
    let seeded = int(&url, "SELECT pg_database_size(current_database())");
    let per_target_day = (seeded - empty) as f64 / (n.max(1) as f64 * days.max(1) as f64);
    println!(
        "history: {rollups} hourly rollups ({days} days × {n} targets) in {:.1}s; database {:.1} MiB \
         ({:.0} bytes per target-day over the empty schema)",
        t.elapsed().as_secs_f64(),
        seeded as f64 / 1048576.0,
        per_target_day
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("monitor.yaml");
    let mut yaml = format!("storage: \"{url}\"\nreplicas: {{ lease_ttl: {ttl}s }}\ntargets:\n");
    for (t, u) in targets.iter().zip(&urls) {
        yaml.push_str(&format!(
            "  - {{ name: {}, url: \"{u}\", interval: {interval}s, timeout: {}s }}\n",
            t.name,
            interval.min(10)
        ));
    }
    std::fs::write(&config, yaml).expect("config");
    let mut logs = 0;
    let mut log = || {
        logs += 1;
        dir.path().join(format!("replica-{logs}.log"))
    };

    let mut runs = Vec::new();
    let mut replicas: Vec<Replica> = Vec::new();
    for k in 1..=max_replicas {
        replicas.push(Replica::start(&config, &log()));
        let spread = wait_spread(&url, &replicas);
        // One full interval so every target has been probed under the new spread, then measure.
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let c0: Vec<u64> = replicas.iter().map(|r| cpu_ticks(r.pid())).collect();
        let r0 = int(&url, "SELECT count(*) FROM results");
        let w0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(window)).await;
        let r1 = int(&url, "SELECT count(*) FROM results");
        let window_s = w0.elapsed().as_secs_f64();
        let cpu_s: Vec<f64> = replicas
            .iter()
            .zip(&c0)
            .map(|(r, c)| cpu_ticks(r.pid()).saturating_sub(*c) as f64 / 100.0)
            .collect();
        let rows_per_s = (r1 - r0) as f64 / window_s;
        println!(
            "{k} replica(s): shards spread in {:.1}s; CPU-seconds per replica over {window_s:.0}s: {:?}; \
             {rows_per_s:.1} result rows/s",
            spread.as_secs_f64(),
            cpu_s
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
        );
        runs.push(Run {
            replicas: k,
            cpu_s,
            window_s,
            rows_per_s,
        });
    }

    // Failover: kill -9 the holder of a target's shard; the first result of that target under a newer epoch.
    let mut times = Vec::new();
    if max_replicas >= 2 {
        for rep in 0..failovers {
            wait_spread(&url, &replicas);
            let target = &targets[(rep as usize * 7919) % targets.len()].name;
            let shard = shard_of(target);
            let row = sql(
                &url,
                &format!(
                    "SELECT coalesce(owner, ''), epoch FROM shard_leases WHERE shard = {shard}"
                ),
            );
            let (owner, epoch) = row.split_once('|').expect("lease row");
            let epoch: i64 = epoch.parse().expect("epoch");
            let victim = replicas
                .iter()
                .position(|r| r.owner_matches(owner))
                .expect("the holder is one of ours");
            let killed = replicas.remove(victim);
            let t0 = now_ms();
            drop(killed); // SIGKILL to its process group
            let deadline = Instant::now() + PATIENCE;
            let first = loop {
                let v = sql(
                    &url,
                    &format!(
                        "SELECT coalesce(min(r.ts_ms), 0) FROM results r JOIN targets t ON t.id = r.target_id \
                         WHERE t.name = '{target}' AND r.epoch > {epoch} AND r.ts_ms >= {t0}"
                    ),
                );
                let v: i64 = v.parse().unwrap_or(0);
                if v > 0 {
                    break v;
                }
                assert!(Instant::now() < deadline, "no new owner probed {target}");
                std::thread::sleep(Duration::from_millis(100));
            };
            let secs = (first - t0) as f64 / 1000.0;
            println!("failover {}: {target} (shard {shard}) {secs:.2}s", rep + 1);
            // Which replica took the shard, and why (its live count and fair share at that round).
            for r in &replicas {
                let taken = taking_line(&r.log, shard);
                if let Some(line) = taken {
                    println!("  taken by {}: {line}", r.pid());
                }
            }
            times.push(secs);
            replicas.push(Replica::start(&config, &log()));
        }
    }
    drop(replicas);

    sql(&url, "VACUUM ANALYZE");
    let db_now = int(&url, "SELECT pg_database_size(current_database())");
    let raw = raw_sizes(&admin, &url, n, interval).await;
    // 90 days of 10,000 targets: the rollups, the raw tail at its largest (every result of the hour being
    // filled, the grace and one rollup period: 63 min), and 48 h of thinned hours (their phase means and kept
    // rows).
    let per_hour = 3600.0 / interval as f64;
    let tail = 10_000.0 * per_hour * (63.0 / 60.0) * raw.per_row;
    let thinned =
        10_000.0 * 48.0 * (raw.phase_per_target_hour + raw.kept_per_target_hour * raw.per_row);
    let rollups_only = per_target_day * 10_000.0 * 90.0;
    let projected = rollups_only + tail + thinned;
    let unthinned = rollups_only + 10_000.0 * per_hour * 48.0 * raw.per_row;
    let goal = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "\n== lifeline monitor HA benchmark: {n} targets at {interval} s, ttl {ttl} s, {days} days seeded, \
         PostgreSQL =="
    );
    println!("replicas | CPU-s per replica over the window (mean) | % of one core | vs 1 replica | rows/s");
    let base_cpu = runs
        .first()
        .map(|r| r.cpu_s.iter().sum::<f64>() / r.cpu_s.len() as f64)
        .unwrap_or(f64::NAN);
    for r in &runs {
        let mean = r.cpu_s.iter().sum::<f64>() / r.cpu_s.len() as f64;
        println!(
            "{:>8} | {mean:>8.1} over {:.0}s (total {:.1}) | {:>5.1}% | {:>5.2} (goal ~{:.2}) | {:.1}",
            r.replicas,
            r.window_s,
            r.cpu_s.iter().sum::<f64>(),
            mean / r.window_s * 100.0,
            mean / base_cpu,
            1.0 / r.replicas as f64,
            r.rows_per_s
        );
    }
    if !times.is_empty() {
        let max = times.iter().copied().fold(0.0, f64::max);
        let bound = (ttl + interval) as f64;
        println!(
            "failover (kill -9 → first result from the new owner) over {}: median {:.2}s, max {max:.2}s   \
             goal max ≤ ttl + interval = {bound:.0}s   {}",
            times.len(),
            median(&times),
            goal(max <= bound)
        );
    }
    println!(
        "database now: {:.1} MiB; rollups {per_target_day:.0} bytes/target-day",
        db_now as f64 / 1048576.0
    );
    println!(
        "raw results: {} rows, {:.0} bytes/row (table and indexes); rolled up and thinned in {:.1}s per hour: \
         {:.2} rows kept and {:.0} bytes of phase means per target-hour",
        raw.rows, raw.per_row, raw.rollup_s_per_hour, raw.kept_per_target_hour, raw.phase_per_target_hour
    );
    println!(
        "projected 90 days × 10,000 targets at {interval} s: rollups {:.0} MiB + raw tail (63 min) {:.0} MiB + \
         48 h thinned {:.0} MiB = {:.0} MiB   goal < 1024 MiB   {}   (unthinned 48 h raw: {:.0} MiB)",
        rollups_only / 1048576.0,
        tail / 1048576.0,
        thinned / 1048576.0,
        projected / 1048576.0,
        goal(projected < (1u64 << 30) as f64),
        unthinned / 1048576.0
    );
    sql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// Per-unit sizes of raw results, measured in a database of their own (see the module doc).
struct RawSizes {
    rows: i64,
    per_row: f64,
    kept_per_target_hour: f64,
    phase_per_target_hour: f64,
    rollup_s_per_hour: f64,
}

/// Fills a fresh database with `n` targets × BENCH_RAW_HOURS complete past hours of raw results at `interval`
/// (copies of the newest healthy result in `template_url`, latency varied), measures bytes per row, rolls the
/// hours up (thinning them) and measures what is left per target-hour. The second hour is the steady one: the
/// first hour's first result per target is a change (nothing before it).
async fn raw_sizes(admin: &str, template_url: &str, n: u64, interval: u64) -> RawSizes {
    let hours = knob("BENCH_RAW_HOURS", 2).max(2) as i64;
    let name = format!("lifeline_bench_raw_{}", std::process::id());
    sql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
    sql(admin, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').expect("a database path");
    let url = format!("{base}/{name}");
    let store = Store::connect(&url).await.expect("store");
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (format!("t{i:05}"), format!("http://127.0.0.1/{i}")))
        .collect();
    store.sync_targets(&names, now_ms()).await.expect("targets");
    let columns = "verdict, up, maintenance, reason, message, era, protocol_version, server_version, tools_count, \
                   schema_hash, timings, tls_days_left, tls_not_after_ms, steps, epoch";
    let template = sql(
        template_url,
        &format!(
            "SELECT row_to_json(r) FROM (SELECT {columns}, latency_ms FROM results WHERE verdict = 'healthy' \
             ORDER BY ts_ms DESC LIMIT 1) r"
        ),
    );
    assert!(!template.is_empty(), "no healthy result to copy");
    let first_hour = now_ms().div_euclid(3_600_000) - hours - 1;
    let per_hour = (3600 / interval.max(1)) as i64;
    let step_ms = (interval * 1000) as i64;
    let t = Instant::now();
    // One statement per hour: in time order, every target at each probe time, as the recorder writes them.
    for h in 0..hours {
        sql(
            &url,
            &format!(
                "INSERT INTO results (target_id, ts_ms, latency_ms, {columns}) \
                 SELECT t.id, {start} + k * {step_ms} + (t.id % 1000) * 7, \
                        (j.latency_ms)::float8 * (0.8 + random() * 0.4), {cols_j} \
                 FROM generate_series(0, {last}) k CROSS JOIN targets t \
                 CROSS JOIN json_populate_record(NULL::results, '{tpl}'::json) j ORDER BY k, t.id",
                start = (first_hour + h) * 3_600_000,
                last = per_hour - 1,
                cols_j = columns
                    .split(", ")
                    .map(|c| format!("j.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", "),
                tpl = template.replace('\'', "''"),
            ),
        );
    }
    sql(&url, "VACUUM ANALYZE results");
    let rows = int(&url, "SELECT count(*) FROM results");
    let bytes = int(&url, "SELECT pg_total_relation_size('results')");
    println!(
        "raw: {rows} results ({n} targets × {hours} h at {interval} s) inserted in {:.1}s; {:.1} MiB",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    let t = Instant::now();
    let rolled = store
        .rollup(now_ms(), Duration::from_secs(120))
        .await
        .expect("rollup");
    let rollup_s_per_hour = t.elapsed().as_secs_f64() / hours as f64;
    assert!(rolled >= hours, "rolled {rolled} of {hours} hours");
    let steady = (first_hour + hours - 1) * 3_600_000;
    let kept = int(
        &url,
        &format!(
            "SELECT count(*) FROM results WHERE ts_ms >= {steady} AND ts_ms < {}",
            steady + 3_600_000
        ),
    );
    sql(&url, "VACUUM ANALYZE phase_hours");
    let phase_rows = int(&url, "SELECT count(*) FROM phase_hours").max(1);
    let phase_bytes = int(&url, "SELECT pg_total_relation_size('phase_hours')");
    store.close().await;
    sql(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    RawSizes {
        rows,
        per_row: bytes as f64 / rows.max(1) as f64,
        kept_per_target_hour: kept as f64 / n.max(1) as f64,
        phase_per_target_hour: phase_bytes as f64 / phase_rows as f64,
        rollup_s_per_hour,
    }
}
