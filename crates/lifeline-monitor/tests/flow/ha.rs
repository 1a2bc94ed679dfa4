//! Issue 14 on a real PostgreSQL (`DATABASE_URL`, from `scripts/postgres.sh`; skipped only with
//! `LIFELINE_SKIP_POSTGRES=1`): three replicas in this process share one database. A target flapped 20 times
//! pages each transition exactly once, with its stable key; a rolling restart of every replica leaves no gap
//! in the target's results longer than ttl + interval, and pages nothing; a database that refuses connections
//! for a while loses no result (the recorder's outage buffer holds them and writes them in probe order).

use std::collections::HashMap;

use lifeline_monitor::store::Store;

use super::*;
use crate::running::start_as;

/// A fresh database on the `DATABASE_URL` server, dropped at the end of the test (also used by `regions.rs`).
pub(crate) struct Pg {
    admin: sqlx::PgPool,
    name: String,
    pub(crate) url: String,
}

impl Pg {
    pub(crate) async fn create(tag: &str) -> Option<Pg> {
        if std::env::var("LIFELINE_SKIP_POSTGRES").as_deref() == Ok("1") {
            eprintln!("!!! LIFELINE_SKIP_POSTGRES=1: the PostgreSQL HA tests are SKIPPED !!!");
            return None;
        }
        let url = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL: start one with `eval \"$(scripts/postgres.sh start)\"` (or LIFELINE_SKIP_POSTGRES=1)",
        );
        let admin = sqlx::PgPool::connect(&url)
            .await
            .expect("connect to DATABASE_URL");
        let name = format!("lifeline_ha_{tag}_{}", std::process::id());
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .unwrap();
        }
        let mut u = url::Url::parse(&url).unwrap();
        u.set_path(&format!("/{name}"));
        Some(Pg {
            admin,
            name,
            url: u.to_string(),
        })
    }

    /// Opens or closes the database to new connections (`ALTER DATABASE … ALLOW_CONNECTIONS`); closing also
    /// ends every connection to it. A refused connection fails at once (SQLSTATE 55000, which sqlx does not
    /// retry), unlike a stopped server, whose refused TCP connections sqlx retries until its acquire timeout.
    async fn admit(&self, allow: bool) {
        let name = &self.name;
        let mut sql = vec![format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}")];
        if !allow {
            sql.push(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ));
        }
        for q in sql {
            sqlx::query(sqlx::AssertSqlSafe(q))
                .execute(&self.admin)
                .await
                .unwrap();
        }
    }

    pub(crate) async fn drop(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

/// The probe times of target `id`'s results in `[from_ms, to_ms)`, oldest first.
async fn result_times(store: &Store, id: i64, from_ms: i64, to_ms: i64) -> Vec<i64> {
    let mut ts: Vec<i64> = store
        .results(id, from_ms, to_ms, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.ts_ms)
        .collect();
    ts.sort_unstable();
    ts
}

/// The `Idempotency-Key` and `webhook-id` headers of a received body.
pub(crate) type Keys = (Option<String>, Option<String>);

/// The bodies received on `path`, with their keys.
pub(crate) fn on(received: &Received, path: &str) -> Vec<(Value, Keys)> {
    let bodies = received.bodies.lock().unwrap();
    let keys = received.keys.lock().unwrap();
    bodies
        .iter()
        .zip(keys.iter())
        .filter(|((p, _), _)| p == path)
        .map(|((_, b), k)| (b.clone(), k.clone()))
        .collect()
}

#[tokio::test]
async fn three_replicas_page_each_of_20_flaps_exactly_once_with_stable_keys() {
    let Some(pg) = Pg::create("flap").await else {
        return;
    };
    let (rx, received) = receiver().await;
    let alerts = format!(
        r#"
  - {{ type: webhook, url: "{rx}/webhook" }}
  - {{ type: pagerduty, routing_key: rk, events_url: "{rx}/pd" }}"#
    );
    let prober = Scripted::new(Verdict::Healthy);
    let mut replicas = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let mut c = config_with(&pg.url, &alerts, false);
        c.tuning.lease_ttl = Duration::from_secs(3);
        replicas.push(start_as(c, prober.clone(), name).await);
    }
    const FLAPS: usize = 20;
    for k in 1..=FLAPS {
        prober.set(|m| m.verdict = Verdict::Unhealthy);
        assert_eventually!(
            on(&received, "webhook").len() >= 2 * k - 1,
            patience = PATIENCE,
            "flap {k}: no opened alert"
        );
        prober.set(|m| m.verdict = Verdict::Healthy);
        assert_eventually!(
            on(&received, "webhook").len() >= 2 * k,
            patience = PATIENCE,
            "flap {k}: no resolved alert"
        );
    }
    more_probes(&prober, 20).await; // time for any wrong extra send

    let hooks = on(&received, "webhook");
    assert_eq!(hooks.len(), 2 * FLAPS, "{hooks:#?}");
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (body, (key, id)) in &hooks {
        let key = key.clone().expect("Idempotency-Key");
        assert_eq!(
            id.as_deref(),
            Some(key.as_str()),
            "webhook-id = Idempotency-Key"
        );
        let kind = body["kind"].as_str().unwrap();
        assert!(key.ends_with(&format!("/{kind}")), "{key} for {kind}");
        *by_key.entry(key).or_default() += 1;
    }
    assert_eq!(
        by_key.len(),
        2 * FLAPS,
        "one key per transition: {by_key:#?}"
    );
    assert!(by_key.values().all(|n| *n == 1));

    let pd = on(&received, "pd");
    assert_eq!(pd.len(), 2 * FLAPS, "{pd:#?}");
    let mut incidents: HashMap<String, Vec<String>> = HashMap::new();
    for (body, _) in &pd {
        incidents
            .entry(body["dedup_key"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["event_action"].as_str().unwrap().to_owned());
    }
    assert_eq!(incidents.len(), FLAPS, "one dedup_key per incident");
    for (key, actions) in &incidents {
        assert_eq!(actions, &["trigger", "resolve"], "{key}");
    }

    for r in replicas {
        r.stop().await;
    }
    pg.drop().await;
}

#[tokio::test]
async fn rolling_restart_of_three_replicas_leaves_no_gap_over_ttl_plus_interval() {
    let Some(pg) = Pg::create("rolling").await else {
        return;
    };
    let (rx, received) = receiver().await;
    let alerts = format!("\n  - {{ type: webhook, url: \"{rx}/webhook\" }}");
    let prober = Scripted::new(Verdict::Healthy);
    let ttl = Duration::from_secs(3);
    let config = || {
        let mut c = config_with(&pg.url, &alerts, false);
        c.tuning.lease_ttl = ttl;
        c
    };
    let interval = config().targets[0].interval;
    let mut replicas = Vec::new();
    for name in ["a1", "b1", "c1"] {
        replicas.push(start_as(config(), prober.clone(), name).await);
    }
    more_probes(&prober, 10).await;
    let from_ms = lifeline_now_ms();
    // Restart each replica in turn (a new pod name each time), waiting for the new one to be ready.
    for (i, name) in ["a2", "b2", "c2"].into_iter().enumerate() {
        let old = replicas.remove(0);
        old.stop().await;
        let new = start_as(config(), prober.clone(), name).await;
        let ready = format!("{}/ready", new.base);
        assert_eventually!(
            reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success()),
            patience = PATIENCE,
            "replica {i} never ready"
        );
        replicas.push(new);
        more_probes(&prober, 10).await;
    }
    let to_ms = lifeline_now_ms();

    let store = Store::connect(&pg.url).await.unwrap();
    let id = store.load_states().await.unwrap()[0].id;
    let ts = result_times(&store, id, from_ms, to_ms).await;
    assert!(ts.len() > 10, "{ts:?}");
    let gap = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    let bound = i64::try_from((ttl + interval).as_millis()).unwrap();
    eprintln!(
        "rolling restart: largest gap {gap} ms over {} results (bound {bound} ms)",
        ts.len()
    );
    assert!(
        gap <= bound,
        "largest gap {gap} ms > ttl + interval = {bound} ms"
    );
    // Fair share: within two lease periods every shard is held by a new replica, at most ceil(128 / 3) each.
    let spread = || async {
        let mut per: HashMap<String, usize> = HashMap::new();
        for s in store.shard_leases().await.unwrap() {
            *per.entry(s.owner.unwrap_or_default()).or_default() += 1;
        }
        per
    };
    assert_eventually!(
        {
            let per = spread().await;
            per.len() == 3 && per.iter().all(|(o, n)| o.ends_with('2') && *n <= 43)
        },
        patience = ttl * 2 + Duration::from_secs(5),
        "shards not spread over the new replicas: {:?}",
        spread().await
    );
    assert_eq!(received.count(), 0, "no page: {:#?}", received.all());
    store.close().await;
    for r in replicas {
        r.stop().await;
    }
    pg.drop().await;
}

pub(crate) fn lifeline_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_second_process_on_one_sqlite_database_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("one.db").display());
    let (rx, _received) = receiver().await;
    let alerts = format!("\n  - {{ type: webhook, url: \"{rx}/webhook\" }}");
    let config = || {
        let mut c = config_with(&db, &alerts, false);
        c.tuning.lease_ttl = Duration::from_secs(1);
        c
    };
    let prober = Scripted::new(Verdict::Healthy);
    let first = start_as(config(), prober.clone(), "first").await;
    more_probes(&prober, 3).await;
    let second = lifeline_monitor::Monitor::new(config(), prober.clone(), "second")
        .await
        .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = tokio::time::timeout(PATIENCE, second.run(l, lifeline_core::Shutdown::new()))
        .await
        .expect("refused within the lease ttl")
        .expect_err("a second process on SQLite must be refused");
    let text = err.to_string();
    assert!(
        text.contains("replica `first`") && text.contains("PostgreSQL"),
        "{text}"
    );
    assert_eq!(err.reason(), "second_replica");
    // After a graceful stop the file is free again at once.
    first.stop().await;
    let again = start_as(config(), prober.clone(), "third").await;
    more_probes(&prober, 3).await;
    again.stop().await;
}

/// A private PostgreSQL from `scripts/postgres.sh` (so restarting it disturbs no other test), stopped on drop.
struct PrivatePg {
    dir: String,
    url: String,
}

impl PrivatePg {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
    }

    fn start() -> PrivatePg {
        // Durable: the test crash-stops the server, and a production server loses no committed transaction
        // in a crash (the default test server acknowledges commits before writing them).
        let out = std::process::Command::new(Self::script())
            .args(["start", "--durable"])
            .output()
            .expect("scripts/postgres.sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .to_owned()
        };
        PrivatePg {
            dir: var("LIFELINE_PG_DIR"),
            url: var("DATABASE_URL"),
        }
    }

    /// Runs `scripts/postgres.sh VERB DIR` (`crash`: an immediate stop; `resume`: start again, same port).
    fn run(&self, verb: &str) {
        let ok = std::process::Command::new(Self::script())
            .args([verb, &self.dir])
            .status()
            .expect("scripts/postgres.sh runs")
            .success();
        assert!(ok, "postgres.sh {verb} failed");
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .args(["stop", &self.dir])
            .status();
    }
}

#[tokio::test]
async fn postgres_crash_restart_under_load_reconnects_and_pages_once() {
    if std::env::var("LIFELINE_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("!!! LIFELINE_SKIP_POSTGRES=1: the PostgreSQL restart test is SKIPPED !!!");
        return;
    }
    let pg = PrivatePg::start();
    let (rx, received) = receiver().await;
    let alerts = format!("\n  - {{ type: webhook, url: \"{rx}/webhook\" }}");
    let prober = Scripted::new(Verdict::Unhealthy);
    let mut replicas = Vec::new();
    // A lease longer than the restart: probing goes on through the outage (trust window 8 s), so every result
    // must be there afterwards, written late from the recorder's outage buffer.
    let ttl = Duration::from_secs(10);
    for name in ["p1", "p2"] {
        let mut c = config_with(&pg.url, &alerts, false);
        c.tuning.lease_ttl = ttl;
        replicas.push(start_as(c, prober.clone(), name).await);
    }
    assert_eventually!(
        !on(&received, "webhook").is_empty(),
        patience = PATIENCE,
        "no page before the restart"
    );
    let store = Store::connect(&pg.url).await.unwrap();
    let id = store.load_states().await.unwrap()[0].id;
    // The shards settled, 64 each (a give-back to the fair share is a gap of its own, up to ttl/3).
    assert_eventually!(
        store.shard_leases().await.is_ok_and(|l| {
            let p1 = l
                .iter()
                .filter(|s| s.owner.as_deref() == Some("p1"))
                .count();
            p1 == 64
                && l.iter()
                    .filter(|s| s.owner.as_deref() == Some("p2"))
                    .count()
                    == 64
        }),
        patience = PATIENCE,
        "shards not spread over both replicas"
    );
    store.close().await;

    // Crash-stop PostgreSQL while both replicas probe and write (after 2 s of history), keep it down for 40
    // probes (about 2.4 s: longer than a batch's three write attempts), and start it again.
    more_probes(&prober, 35).await;
    let crashed_ms = lifeline_now_ms();
    pg.run("crash");
    more_probes(&prober, 40).await;
    pg.run("resume");
    let restarted_ms = lifeline_now_ms();
    let store = Store::connect(&pg.url).await.unwrap();
    assert_eventually!(
        store
            .results(id, restarted_ms, i64::MAX, 10)
            .await
            .is_ok_and(|r| !r.is_empty()),
        patience = PATIENCE,
        "no result written after the restart: the replicas did not reconnect"
    );
    prober.set(|m| m.verdict = Verdict::Healthy);
    assert_eventually!(
        on(&received, "webhook").len() >= 2,
        patience = PATIENCE,
        "no resolve after the restart"
    );
    more_probes(&prober, 20).await;
    let hooks = on(&received, "webhook");
    let kinds: Vec<&str> = hooks
        .iter()
        .map(|(b, _)| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["opened", "resolved"],
        "one page and one resolve: {hooks:#?}"
    );
    // Nothing lost beyond the outage window: from 2 s before the crash to after the resolve, the results follow
    // the probe schedule (every 60 ms) with no gap over 1 s (a loaded machine), unless the outage outlasted
    // the trust window (8 s), and then only inside the outage and the re-take after it. (The pool waits for
    // the server while it restarts; results it cannot write wait in the recorder's outage buffer.)
    let ts = result_times(&store, id, crashed_ms - 2_000, i64::MAX).await;
    assert!(
        ts.first().is_some_and(|t| *t < crashed_ms - 1_000),
        "no results before the crash"
    );
    let outage = restarted_ms - crashed_ms;
    for w in ts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let excused = outage > 8_000 && a >= crashed_ms && b <= restarted_ms + 12_000;
        assert!(
            b - a <= 1_000 || excused,
            "a gap of {} ms at {} ms after the crash (outage {outage} ms)",
            b - a,
            a - crashed_ms
        );
    }
    assert_eq!(
        store
            .incidents(None, false, i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
    for r in replicas {
        r.stop().await;
    }
}

/// The recorder's outage buffer (`recorder.rs`, `MAX_PENDING`) on a real outage that fails fast: the database
/// refuses connections (and its open ones are ended) while a replica probes every 60 ms, so every write fails
/// at once and its results go to the buffer; once it holds some, connections are allowed again. Every result
/// probed in the outage arrives, with its probe time, and nothing is dropped or fenced.
#[tokio::test]
async fn a_database_refusing_connections_loses_no_result_the_outage_buffer_writes_them_late() {
    let Some(pg) = Pg::create("outage").await else {
        return;
    };
    let (rx, received) = receiver().await;
    let alerts = format!("\n  - {{ type: webhook, url: \"{rx}/webhook\" }}");
    let prober = Scripted::new(Verdict::Healthy);
    let mut c = config_with(&pg.url, &alerts, false);
    // A lease longer than the outage: the trust window (8 s) keeps probing going, so results pile up.
    c.tuning.lease_ttl = Duration::from_secs(10);
    let m = start_as(c, prober.clone(), "o1").await;
    let ready = format!("{}/ready", m.base);
    assert_eventually!(
        reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success()),
        patience = PATIENCE,
        "never ready"
    );
    more_probes(&prober, 10).await;
    let store = Store::connect(&pg.url).await.unwrap();
    let id = store.load_states().await.unwrap()[0].id;
    store.close().await;

    let pending = || sample(&m.base, "lifeline_monitor_results_pending");
    let down_ms = lifeline_now_ms();
    pg.admit(false).await;
    // At least 20 results (about 1.2 s of probes) wait in the buffer: the writes failed and were kept.
    assert_eventually!(
        pending().await.is_some_and(|n| n >= 20.0),
        patience = PATIENCE,
        "the outage buffer never filled: {:?}",
        pending().await
    );
    let peak = pending().await.unwrap_or_default();
    pg.admit(true).await;
    let up_ms = lifeline_now_ms();
    assert_eventually!(
        pending().await == Some(0.0),
        patience = PATIENCE,
        "the outage buffer never drained: {:?}",
        pending().await
    );
    more_probes(&prober, 20).await; // past the end of the window read below
    let store = Store::connect(&pg.url).await.unwrap();
    // Nothing lost beyond the outage window: from 1 s before it to 1 s after, the results follow the probe
    // schedule (every 60 ms) with no gap over 1 s (a loaded machine), and those probed in the outage are all
    // there (at least as many as the buffer held), with their probe times.
    let ts = result_times(&store, id, down_ms - 1_000, up_ms + 1_000).await;
    let gap = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(i64::MAX);
    let inside = ts.iter().filter(|t| (down_ms..up_ms).contains(*t)).count();
    eprintln!(
        "outage {} ms: buffer peak {peak}, {inside} results probed in it, largest gap {gap} ms",
        up_ms - down_ms
    );
    assert!(ts.first().is_some_and(|t| *t < down_ms - 500), "{ts:?}");
    assert!(ts.last().is_some_and(|t| *t > up_ms + 500), "{ts:?}");
    assert!(gap <= 1_000, "a gap of {gap} ms: {ts:?}");
    assert!(
        inside as f64 >= peak,
        "{inside} results in the outage < {peak} buffered"
    );
    for series in [
        "lifeline_monitor_results_dropped_total",
        "lifeline_monitor_fenced_writes_total",
    ] {
        assert_eq!(sample(&m.base, series).await, Some(0.0), "{series}");
    }
    assert_eq!(received.count(), 0, "no page: {:#?}", received.all());
    store.close().await;
    m.stop().await;
    pg.drop().await;
}
