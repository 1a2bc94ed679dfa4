//! The storage suite, run against SQLite and against a real PostgreSQL (`DATABASE_URL`, started by
//! `scripts/postgres.sh`). PostgreSQL is skipped only when `LIFELINE_SKIP_POSTGRES=1`; otherwise a missing
//! `DATABASE_URL` fails the test.

use std::time::Duration;

use lifeline_mcp::{Era, Reason, Verdict};
use serde_json::json;

use super::*;
use crate::sketch::Bucket;

const T0: i64 = 1_777_593_600_000; // 2026-05-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn alert(provider: &str, due_ms: i64) -> NewAlert {
    NewAlert {
        provider: provider.into(),
        due_ms,
        context: json!({"verdict": "unhealthy"}),
    }
}

fn result(ts_ms: i64, up: bool, latency: f64) -> ProbeRow {
    let verdict = if up {
        Verdict::Healthy
    } else {
        Verdict::Unhealthy
    };
    ProbeRow {
        up,
        latency_ms: Some(latency),
        ..ProbeRow::new(ts_ms, verdict)
    }
}

fn op(state: &TargetState, r: ProbeRow, incident: IncidentOp) -> RecordOp {
    RecordOp {
        state: state.clone(),
        tools_json: None,
        result: r,
        events: vec![],
        incident,
    }
}

async fn suite(store: Store) {
    // Targets: upsert by name, inactive when gone.
    let ids = store
        .sync_targets(
            &[
                ("a".into(), "http://a/mcp".into()),
                ("b".into(), "http://b/mcp".into()),
            ],
            T0,
        )
        .await
        .unwrap();
    let (a, b) = (ids[0].1, ids[1].1);
    assert_ne!(a, b);
    let again = store
        .sync_targets(&[("a".into(), "http://a2/mcp".into())], T0)
        .await
        .unwrap();
    assert_eq!(again[0].1, a);
    let states = store.load_states().await.unwrap();
    assert_eq!(
        states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(states[0].url, "http://a2/mcp");
    store
        .sync_targets(
            &[
                ("a".into(), "http://a/mcp".into()),
                ("b".into(), "http://b/mcp".into()),
            ],
            T0,
        )
        .await
        .unwrap();

    // Opening an incident queues one send per provider, in the same transaction.
    let sa = TargetState {
        id: a,
        name: "a".into(),
        consecutive_failures: 3,
        ..TargetState::default()
    };
    let open = IncidentOp::Open {
        at_ms: T0 + 1000,
        reason: Some(Reason::ConnectRefused),
        message: Some("refused".into()),
        summary: "a is down".into(),
        alerts: vec![alert("webhook", T0 + 1000), alert("pagerduty", T0 + 1000)],
    };
    let opened = store
        .record(&[op(&sa, result(T0 + 1000, false, 5.0), open.clone())])
        .await
        .unwrap();
    let inc = opened[0].expect("an incident opened");
    // A second replica opening the same target's incident adopts it and queues nothing.
    let again = store
        .record(&[op(&sa, result(T0 + 1100, false, 5.0), open)])
        .await
        .unwrap();
    assert_eq!(again[0], Some(inc));
    let states = store.load_states().await.unwrap();
    let st = states.iter().find(|s| s.id == a).unwrap();
    assert_eq!(st.open_incident.as_ref().map(|i| i.id), Some(inc));
    assert_eq!(st.consecutive_failures, 3);
    // What Alertmanager's re-send reads: the open incident with its target.
    assert_eq!(
        store.firing_incidents(10).await.unwrap(),
        [FiringIncident {
            incident_id: inc,
            target: "a".into(),
            url: "http://a/mcp".into(),
            opened_ms: T0 + 1000,
            reason: Some("connect_refused".into()),
            message: Some("refused".into()),
        }]
    );

    // Claims: one holder wins each send, once.
    let claimed = store
        .claim_alerts("r1", T0 + 2000, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|c| c.target == "a" && c.kind == AlertKindTag::Opened && c.incident_id == inc));
    assert!(store
        .claim_alerts("r2", T0 + 2000, Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());
    store
        .finish_alert(claimed[0].id, OutboxState::Sent, 1, None, T0 + 2100)
        .await
        .unwrap();
    // An expired claim is taken over; a finished send never comes back.
    let retaken = store
        .claim_alerts("r2", T0 + 70_000, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        retaken.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![claimed[1].id]
    );
    store
        .finish_alert(
            retaken[0].id,
            OutboxState::Failed,
            4,
            Some("HTTP 500"),
            T0 + 70_100,
        )
        .await
        .unwrap();
    assert!(store
        .claim_alerts("r3", T0 + 200_000, Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());

    // Resolve: once; a delayed send is not claimable before it is due.
    let resolve = IncidentOp::Resolve {
        incident_id: inc,
        at_ms: T0 + 5000,
        summary: "a recovered".into(),
        alerts: vec![alert("webhook", T0 + 9000)],
    };
    let sa2 = TargetState {
        consecutive_failures: 0,
        consecutive_successes: 2,
        open_incident: None,
        ..sa.clone()
    };
    store
        .record(&[op(&sa2, result(T0 + 5000, true, 7.0), resolve.clone())])
        .await
        .unwrap();
    store
        .record(&[op(&sa2, result(T0 + 5100, true, 7.0), resolve)])
        .await
        .unwrap();
    assert!(store
        .claim_alerts("r1", T0 + 8000, Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());
    let due = store
        .claim_alerts("r1", T0 + 9000, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, AlertKindTag::Resolved);
    assert_eq!(due[0].resolved_ms, Some(T0 + 5000));
    let incidents = store.incidents(Some(a), false, i64::MAX, 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].resolved_ms, Some(T0 + 5000));
    assert!(store
        .incidents(None, true, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.firing_incidents(10).await.unwrap().is_empty());
    let events = store.events(Some(a), None, i64::MAX, 10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["incident_resolved", "incident_opened"]
    );
    assert_eq!(
        store
            .events(None, Some("incident_opened"), i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let counts = store.alert_counts().await.unwrap();
    assert!(
        counts.contains(&("sent".into(), "webhook".into(), "opened".into(), 1)),
        "{counts:?}"
    );

    // Raw results → rollups: hour 2 has b's 4 results (3 up); hour 3 one result not yet past the grace.
    let sb = TargetState {
        id: b,
        name: "b".into(),
        ..TargetState::default()
    };
    let mut ops = Vec::new();
    for (i, up) in [true, true, false, true].into_iter().enumerate() {
        let latency = 10.0 * (i as f64 + 1.0);
        ops.push(op(
            &sb,
            ProbeRow {
                timings: up.then(|| format!(r#"{{"connect":1,"total":{latency}}}"#)),
                ..result(T0 + 2 * HOUR + i as i64 * 60_000, up, latency)
            },
            IncidentOp::None,
        ));
    }
    ops.push(op(
        &sb,
        result(T0 + 3 * HOUR + 10, true, 50.0),
        IncidentOp::None,
    ));
    store.record(&ops).await.unwrap();
    let rolled = store
        .rollup(T0 + 3 * HOUR + 60_000, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(
        rolled, 2,
        "hours 0 and 1 (a's results) and 2 are complete; hour 0 is the first with results"
    );
    // Hour 0 (a's), 1 (empty), 2 (b's): rolled after the grace.
    let rolled = store
        .rollup(T0 + 3 * HOUR + 180_000, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(rolled, 1);
    assert_eq!(
        store.rollup_watermark().await.unwrap(),
        Some((T0 + 3 * HOUR) / HOUR)
    );
    assert_eq!(
        store
            .rollup(T0 + 3 * HOUR + 180_000, Duration::from_secs(120))
            .await
            .unwrap(),
        0,
        "never twice"
    );
    let hours = store
        .hour_buckets(b, T0 / 86_400_000, T0 / 86_400_000)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].0, T0 / HOUR + 2);
    assert_eq!(
        (hours[0].1.total, hours[0].1.up, hours[0].1.unhealthy),
        (4, 3, 1)
    );
    assert_eq!(
        hours[0].1.latency.count(),
        3,
        "only usable probes have a latency"
    );
    // Thinning (issue 14): the rolled hour keeps its first result, the failure and the recovery after it; the
    // healthy repeat (the second) is gone, and the hour's usable probes live on as one mean for the phase chart,
    // returned as one sample per probe.
    let kept: Vec<i64> = store
        .results(b, T0 + 2 * HOUR, T0 + 3 * HOUR, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.ts_ms - T0 - 2 * HOUR) / 60_000)
        .collect();
    assert_eq!(kept, [3, 2, 0], "minutes kept in hour 2, newest first");
    let h2 = T0 / HOUR + 2;
    let means = store.phase_timings(b, h2..=h2, 60).await.unwrap();
    assert_eq!(
        means,
        vec![
            (
                T0 + 3 * HOUR - 1,
                r#"{"connect":1.0,"total":23.333}"#.to_owned()
            );
            3
        ]
    );
    // Uptime exact to the hour: from hour 2 includes b's rolled hour and its raw tail.
    let up = store.uptime_since(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(up.get(&b), Some(&UptimeCounts { up: 4, total: 5 }));
    let up = store.uptime_since(T0 + 3 * HOUR).await.unwrap();
    assert_eq!(up.get(&b), Some(&UptimeCounts { up: 1, total: 1 }));
    let days = store.day_rows(Some(b), 0).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].bucket.total, 4);
    assert_eq!(
        store.day_rows(None, T0 / 86_400_000).await.unwrap().len(),
        2
    );

    // The shared rollup path merges (the benchmark loads history through it).
    let mut bucket = Bucket {
        total: 60,
        up: 60,
        healthy: 60,
        ..Bucket::default()
    };
    bucket.latency.record(20.0);
    store
        .apply_hourly(&[HourRollup {
            target_id: b,
            hour: T0 / HOUR + 5,
            bucket: bucket.clone(),
        }])
        .await
        .unwrap();
    store
        .apply_hourly(&[HourRollup {
            target_id: b,
            hour: T0 / HOUR + 5,
            bucket,
        }])
        .await
        .unwrap();
    let hours = store
        .hour_buckets(b, T0 / 86_400_000, T0 / 86_400_000)
        .await
        .unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|(h, bk)| (*h - T0 / HOUR, bk.total))
            .collect::<Vec<_>>(),
        vec![(2, 4), (5, 120)]
    );

    // Raw results and history queries.
    let raw = store.results(b, T0, T0 + 4 * HOUR, 3).await.unwrap();
    assert_eq!(raw.len(), 3);
    assert!(raw[0].ts_ms > raw[1].ts_ms, "newest first");
    // Retention: raw past 48 h goes, but only once rolled up.
    let pruned = store
        .prune(
            T0 + 51 * HOUR,
            Duration::from_secs(48 * 3600),
            Duration::from_secs(100 * 86400),
            Duration::from_secs(400 * 86400),
        )
        .await
        .unwrap();
    assert!(pruned >= 6, "{pruned}");
    assert_eq!(
        store.results(b, 0, i64::MAX, 100).await.unwrap().len(),
        1,
        "the unrolled hour-3 result stays"
    );

    // Leases.
    let ttl = Duration::from_secs(30);
    assert!(store
        .acquire_lease("scheduler", "r1", T0, ttl)
        .await
        .unwrap());
    assert!(!store
        .acquire_lease("scheduler", "r2", T0 + 1000, ttl)
        .await
        .unwrap());
    assert!(
        store
            .acquire_lease("scheduler", "r1", T0 + 2000, ttl)
            .await
            .unwrap(),
        "renewal"
    );
    assert!(
        store
            .acquire_lease("scheduler", "r2", T0 + 40_000, ttl)
            .await
            .unwrap(),
        "after expiry"
    );
    store.release_lease("scheduler", "r2").await.unwrap();
    assert!(
        store
            .acquire_lease("scheduler", "r1", T0 + 41_000, ttl)
            .await
            .unwrap(),
        "after release"
    );

    // Incidents and events read back typed.
    let incidents = store.incidents(Some(a), false, i64::MAX, 10).await.unwrap();
    assert_eq!(incidents[0].reason, Some(Label(Reason::ConnectRefused)));
    let events = store.events(Some(a), None, i64::MAX, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind.get(), e.severity.get()))
            .collect::<Vec<_>>(),
        [
            (EventKind::IncidentResolved, Severity::Info),
            (EventKind::IncidentOpened, Severity::Critical)
        ]
    );

    // Every field of a result row survives the write and the read (distinct values, so a bind out of
    // column order shows).
    let full = ProbeRow {
        ts_ms: T0 + 100 * HOUR,
        verdict: Label(Verdict::Degraded),
        up: true,
        maintenance: false,
        reason: Some(Label(Reason::Slow)),
        message: Some("slow".into()),
        era: Some(Label(Era::Sse)),
        protocol_version: Some("2024-11-05".into()),
        server_version: Some("1.2.3".into()),
        tools_count: Some(7),
        schema_hash: Some("abc123".into()),
        latency_ms: Some(123.5),
        timings: Some(r#"{"total":123.5}"#.into()),
        tls_days_left: Some(12),
        tls_not_after_ms: Some(T0 + 12 * 86_400_000),
        steps: Some(r#"[{"kind":"tool","target":"search","outcome":"passed"}]"#.into()),
    };
    // … and so does every field of the target's state (distinct values again).
    let full_state = TargetState {
        id: a,
        name: "a".into(),
        url: "http://a/mcp".into(),
        consecutive_failures: 0,
        consecutive_successes: 9,
        open_incident: None,
        last_checked_ms: Some(T0 + 100 * HOUR),
        last_verdict: Some("degraded".into()),
        last_reason: Some("slow".into()),
        last_message: Some("slow".into()),
        last_latency_ms: Some(123.5),
        era: Some("sse".into()),
        protocol_version: Some("2024-11-05".into()),
        server_name: Some("srv".into()),
        server_version: Some("1.2.3".into()),
        tools_count: Some(7),
        schema_hash: Some("abc123".into()),
        tls_not_after_ms: Some(T0 + 12 * 86_400_000),
        tls_days_left: Some(12),
        cert_warned_days: Some(14),
    };
    let mut full_op = op(&full_state, full.clone(), IncidentOp::None);
    full_op.tools_json = Some(r#"[{"name":"x"}]"#.into());
    store.record(&[full_op]).await.unwrap();
    let states = store.load_states().await.unwrap();
    assert_eq!(states.iter().find(|s| s.id == a), Some(&full_state));
    assert_eq!(
        store.last_tools(a).await.unwrap().as_deref(),
        Some(r#"[{"name":"x"}]"#)
    );
    // A state without a new tool list keeps the stored one.
    store
        .record(&[op(
            &full_state,
            ProbeRow::new(T0 + 101 * HOUR, Verdict::Healthy),
            IncidentOp::None,
        )])
        .await
        .unwrap();
    assert_eq!(
        store.last_tools(a).await.unwrap().as_deref(),
        Some(r#"[{"name":"x"}]"#)
    );
    let back = store
        .results(a, T0 + 100 * HOUR, T0 + 101 * HOUR, 10)
        .await
        .unwrap();
    assert_eq!(back, [full]);

    // A batch larger than one INSERT's rows is written whole.
    let many: Vec<RecordOp> = (0..300)
        .map(|i| {
            op(
                &full_state,
                result(T0 + 200 * HOUR + i, true, 1.0),
                IncidentOp::None,
            )
        })
        .collect();
    store.record(&many).await.unwrap();
    let back = store
        .results(a, T0 + 200 * HOUR, T0 + 201 * HOUR, 1000)
        .await
        .unwrap();
    assert_eq!(back.len(), 300);
    assert_eq!(back[0].ts_ms, T0 + 200 * HOUR + 299, "newest first");

    // Phase timings: only usable probes with timings, newest first, within the range, at most N per hour.
    let timed = |ts: i64, verdict: Verdict, timings: Option<&str>| ProbeRow {
        up: verdict == Verdict::Healthy,
        timings: timings.map(str::to_owned),
        ..ProbeRow::new(ts, verdict)
    };
    let t300 = T0 + 300 * HOUR;
    let h300 = t300 / HOUR;
    store
        .record(&[
            op(
                &full_state,
                timed(t300, Verdict::Healthy, Some(r#"{"ping":1,"total":2}"#)),
                IncidentOp::None,
            ),
            op(
                &full_state,
                timed(t300 + 1, Verdict::Degraded, Some(r#"{"ping":9,"total":9}"#)),
                IncidentOp::None,
            ),
            op(
                &full_state,
                timed(t300 + 2, Verdict::Unhealthy, Some(r#"{"connect":5}"#)),
                IncidentOp::None,
            ),
            op(
                &full_state,
                timed(t300 + 3, Verdict::Healthy, None),
                IncidentOp::None,
            ),
            op(
                &full_state,
                timed(t300 + 4, Verdict::Healthy, Some(r#"{"total":4}"#)),
                IncidentOp::None,
            ),
            op(
                &full_state,
                timed(t300 + HOUR, Verdict::Healthy, Some(r#"{"total":5}"#)),
                IncidentOp::None,
            ),
        ])
        .await
        .unwrap();
    let samples = store.phase_timings(a, h300..=h300, 10).await.unwrap();
    assert_eq!(
        samples.iter().map(|(ts, _)| ts - t300).collect::<Vec<_>>(),
        [4, 1, 0]
    );
    assert_eq!(samples[1].1, r#"{"ping":9,"total":9}"#);
    let capped = store.phase_timings(a, h300..=h300 + 1, 2).await.unwrap();
    assert_eq!(
        capped.iter().map(|(ts, _)| ts - t300).collect::<Vec<_>>(),
        [HOUR, 4, 1],
        "the newest 2 of each hour"
    );
    assert!(store
        .phase_timings(b, h300..=h300 + 1, 10)
        .await
        .unwrap()
        .is_empty());

    assert!(store.size_bytes().await.unwrap() > 0);
    store.ping().await.unwrap();

    // A label this build does not know fails the read with a decode error naming it (never a default, never
    // a panic).
    sqlx_exec(
        &store,
        "INSERT INTO results (target_id, ts_ms, verdict, up, maintenance) VALUES (1, 5, 'bogus', 0, 0)",
    )
    .await;
    let err = store.results(1, 0, 10, 10).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown verdict label `bogus`"),
        "{err}"
    );
}

/// Runs one statement on the store's pool.
async fn sqlx_exec(store: &Store, sql: &'static str) {
    with_pool!(store, pool => sqlx::query(sql).execute(pool).await.map(|_| ()).unwrap());
}

/// The migrations as registered by hand before `sqlx::migrate!` (version 1, "init", the same file): a
/// database created by them must open with the embedded migrations.
fn hand_registered(backend: Backend) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType};
    use sqlx::SqlSafeStr as _;
    let sql: &'static str = match backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_init.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_init.sql"),
    };
    sqlx::migrate::Migrator::with_migrations(vec![Migration::new(
        1,
        std::borrow::Cow::Borrowed("init"),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )])
}

#[test]
fn embedded_migration_1_matches_the_hand_registered_one() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let old = hand_registered(backend);
        let new = migrator(backend);
        let (o, n) = (&old.migrations[0], &new.migrations[0]);
        assert_eq!(
            (o.version, &o.checksum),
            (n.version, &n.checksum),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_sqlite_database_from_the_hand_registered_migrations_opens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let old = Store::connect_unmigrated(&url).await.unwrap();
    with_pool!(old, pool => hand_registered(Backend::Sqlite).run(pool).await.unwrap());
    old.close().await;
    suite(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn storage_suite_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    suite(Store::connect(&url).await.unwrap()).await;
    // Migrations are idempotent on reopen.
    Store::connect(&url).await.unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn storage_suite_postgres() {
    let Some(db) = FreshPg::create("suite").await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    suite(store.clone()).await;
    Store::connect(&db.url).await.unwrap().ping().await.unwrap();
    store.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_postgres_database_from_the_hand_registered_migrations_opens() {
    let Some(db) = FreshPg::create("old").await else {
        return;
    };
    let old = Store::connect_unmigrated(&db.url).await.unwrap();
    with_pool!(old, pool => hand_registered(Backend::Postgres).run(pool).await.unwrap());
    old.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    suite(store.clone()).await;
    store.close().await;
    db.drop().await;
}

/// A fresh PostgreSQL database per test run on the `DATABASE_URL` server, dropped by [`FreshPg::drop`].
pub(crate) struct FreshPg {
    admin: sqlx::PgPool,
    name: String,
    pub(crate) url: String,
}

impl FreshPg {
    pub(crate) async fn create(tag: &str) -> Option<FreshPg> {
        let url = postgres_url()?;
        let admin = sqlx::PgPool::connect(&url)
            .await
            .expect("connect to DATABASE_URL");
        let name = format!("lifeline_test_{tag}_{}_{}", std::process::id(), T0 % 1000);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let mut u = url::Url::parse(&url).unwrap();
        u.set_path(&format!("/{name}"));
        Some(FreshPg {
            admin,
            name,
            url: u.to_string(),
        })
    }

    pub(crate) async fn drop(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

/// `DATABASE_URL`, or `None` (with a loud message) when `LIFELINE_SKIP_POSTGRES=1`; panics otherwise.
pub(crate) fn postgres_url() -> Option<String> {
    if std::env::var("LIFELINE_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("!!! LIFELINE_SKIP_POSTGRES=1: the PostgreSQL storage suite is SKIPPED !!!");
        return None;
    }
    match std::env::var("DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => Some(u),
        _ => panic!(
            "DATABASE_URL is not a postgres:// URL. Start one with `eval \"$(scripts/postgres.sh start)\"`, \
             or set LIFELINE_SKIP_POSTGRES=1 to skip the PostgreSQL suite"
        ),
    }
}
