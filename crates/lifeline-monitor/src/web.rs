//! The monitor's HTTP face, all on one listener (axum). Routes:
//! - `GET /`: the status page (`?page=N` for fleets over 50 targets; `?refresh=S` reloads it every S seconds);
//! - `GET /targets/{name}`: one target's page (the name percent-encoded as one path segment; 404 page when no
//!   target has it);
//! - `GET /api/v1/targets`, `/api/v1/targets/{name}`, `/api/v1/targets/{name}/history`, `/api/v1/incidents`,
//!   `/api/v1/events`, `/api/v1/alerts`: the JSON API (`docs/api.md`);
//! - `GET /metrics`: Prometheus text format;
//! - `GET /live`: 200 while the process serves requests;
//! - `GET /ready`: 200 once a snapshot is loaded and the database answers, 503 before and while shutting down.
//!
//! The status page and the target list read the in-memory [`snapshot`], never the history tables; a target's
//! page adds a few bounded queries of its own history (`web/page/target.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

pub mod api;
pub mod page;
pub mod phases;
pub mod snapshot;
pub mod svg;

use snapshot::SnapshotCell;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// The current snapshot.
    pub snapshot: SnapshotCell,
    /// The database (target pages and history).
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Configuration.
    pub config: Arc<Config>,
    /// False before the first snapshot and once shutdown starts.
    pub ready: AtomicBool,
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/targets/{name}", get(target))
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/targets/{name}", get(api::target))
        .route("/api/v1/targets/{name}/history", get(api::history))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/agents", get(crate::agent::api::agents))
        .route(
            "/api/v1/targets/{name}/regions",
            get(crate::agent::api::target_regions),
        )
        .route(
            "/api/v1/agent/assignments",
            get(crate::agent::api::assignments),
        )
        .route(
            "/api/v1/agent/results",
            axum::routing::post(crate::agent::api::results),
        )
        .route("/metrics", get(metrics))
        .route("/live", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(state)
}

/// The pages' query: `page` (status page, 1-based) and `refresh` (seconds between reloads, clamped to
/// [`page::REFRESH_RANGE_S`]; no reload without it).
#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<usize>,
    refresh: Option<u32>,
}

impl PageQuery {
    fn refresh(&self) -> Option<u32> {
        self.refresh
            .map(|s| s.clamp(*page::REFRESH_RANGE_S.start(), *page::REFRESH_RANGE_S.end()))
    }
}

async fn status(State(app): State<Arc<AppState>>, Query(q): Query<PageQuery>) -> Html<String> {
    let snap = app.snapshot.get();
    Html(page::status_page(
        &snap,
        &app.config.title,
        q.page.unwrap_or(1),
        q.refresh(),
    ))
}

/// Rows the target page reads at most, per query: usable probes with timings per hour of the raw window (the
/// newest of each hour: 48 × 60 = 2,880 rows at most, whatever the interval), latest probes, incidents, events
/// and drift events.
const TARGET_PAGE_PHASE_SAMPLES_PER_HOUR: i64 = 60;
const TARGET_PAGE_RESULTS: i64 = 50;
const TARGET_PAGE_INCIDENTS: i64 = 30;
const TARGET_PAGE_EVENTS: i64 = 200;
const TARGET_PAGE_DRIFT: i64 = 20;
/// The per-phase chart's window: the raw results' (the rollups keep no phases).
const PHASE_WINDOW_HOURS: i64 = 48;

/// `GET /targets/{name}`: the snapshot's entry plus bounded reads of the target's history: 8 day rows (hourly
/// p50/p95), two columns of at most [`TARGET_PAGE_PHASE_SAMPLES_PER_HOUR`] raw results per hour (phases), and the
/// latest results, incidents, events and drift events, each by index and limit.
async fn target(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let snap = app.snapshot.get();
    let Some(t) = snap.by_name.get(&name).and_then(|i| snap.targets.get(*i)) else {
        return (
            StatusCode::NOT_FOUND,
            Html(page::not_found(&format!("No target is named `{name}`."))),
        )
            .into_response();
    };
    let now = snap.generated_ms.max(crate::scheduler::now_ms());
    let id = t.state.id;
    let region_from = (now.div_euclid(HOUR_MS) - 23) * HOUR_MS;
    let detail = async {
        // A multi-region target's agent results of the last 24 hours (bounded by the window read's limit).
        let day = if app
            .config
            .targets
            .iter()
            .any(|c| c.name == name && c.regions.is_some())
        {
            app.store
                .region_results_between(Some(&name), region_from, i64::MAX)
                .await?
        } else {
            Vec::new()
        };
        let today = now.div_euclid(DAY_MS);
        let hours = app.store.hour_buckets(id, today - 7, today).await?;
        let first_hour = now.div_euclid(HOUR_MS) - 7 * 24 + 1;
        let mut hourly: Vec<(String, Option<f64>, Option<f64>)> = (first_hour
            ..=now.div_euclid(HOUR_MS))
            .map(|h| (page::fmt_time(h * HOUR_MS), None, None))
            .collect();
        for (h, b) in hours {
            if let Some(slot) = usize::try_from(h - first_hour)
                .ok()
                .and_then(|i| hourly.get_mut(i))
            {
                slot.1 = b.latency.quantile(0.5);
                slot.2 = b.latency.quantile(0.95);
            }
        }
        let last_hour = now.div_euclid(HOUR_MS);
        let samples = app
            .store
            .phase_timings(
                id,
                last_hour - PHASE_WINDOW_HOURS + 1..=last_hour,
                TARGET_PAGE_PHASE_SAMPLES_PER_HOUR,
            )
            .await?;
        Ok::<_, crate::store::StoreError>(page::TargetDetail {
            hourly,
            phases: phases::hourly(&samples, last_hour - PHASE_WINDOW_HOURS + 1, last_hour),
            results: app
                .store
                .results(id, now - 48 * HOUR_MS, i64::MAX, TARGET_PAGE_RESULTS)
                .await?,
            incidents: app
                .store
                .incidents(Some(id), false, i64::MAX, TARGET_PAGE_INCIDENTS)
                .await?,
            events: app
                .store
                .events(Some(id), None, i64::MAX, TARGET_PAGE_EVENTS)
                .await?,
            drift: app
                .store
                .events(Some(id), Some("schema_drift"), i64::MAX, TARGET_PAGE_DRIFT)
                .await?,
            regions: {
                let mut r: Vec<_> = day
                    .iter()
                    .filter(|x| x.result.probed_at_ms >= now - HOUR_MS)
                    .cloned()
                    .collect();
                r.reverse();
                r.truncate(TARGET_PAGE_RESULTS as usize);
                r
            },
            region_hours: crate::agent::evaluate::region_hours(
                app.config.targets.iter().find(|c| c.name == name),
                &day,
                region_from,
            ),
            region_hours_from_ms: region_from,
            region_schema: app
                .config
                .targets
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| crate::agent::evaluate::schema_hashes(c, &day)),
        })
    }
    .await;
    match detail {
        Ok(d) => Html(page::target_page(
            t,
            &d,
            &app.config.title,
            now,
            q.refresh(),
        ))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Target page failed on storage.");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

async fn ready(State(app): State<Arc<AppState>>) -> Response {
    if !app.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response();
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response(),
    }
}
