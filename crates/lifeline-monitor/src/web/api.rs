//! JSON API under `/api/v1` (documented in `docs/api.md`): targets with current state and uptime, a target's
//! history over a time range, incidents and events. Times are RFC 3339 UTC; ratios are 0–1.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::snapshot::TargetView;
use super::AppState;
use crate::scheduler::now_ms;
use crate::store::{HistoryPoint, StoreError, UptimeCounts};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Most raw points one history request returns.
const MAX_RAW_POINTS: i64 = 5_000;
/// Most incidents or events one request returns.
const MAX_LIMIT: i64 = 1_000;

/// An API failure, mapped to HTTP in one place; 5xx bodies are opaque (the cause goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such target.
    #[error("no target named `{0}`")]
    UnknownTarget(String),
    /// A query parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed.
    #[error("storage unavailable")]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::UnknownTarget(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(e) => {
                tracing::error!(error = %e, "API request failed on storage.");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn iso(ms: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// Parses an RFC 3339 time or Unix seconds into Unix ms.
fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    time::OffsetDateTime::parse(v, &Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name}: expected RFC 3339 (2026-05-01T00:00:00Z) or Unix seconds"
            ))
        })
}

/// Uptime windows keyed `24h`, `7d`, `30d`, `90d`.
#[derive(Debug, Serialize)]
struct Windows<T> {
    #[serde(rename = "24h")]
    h24: T,
    #[serde(rename = "7d")]
    d7: T,
    #[serde(rename = "30d")]
    d30: T,
    #[serde(rename = "90d")]
    d90: T,
}

impl<T: Copy> Windows<T> {
    fn from_fn(f: impl Fn(usize) -> T) -> Self {
        Windows {
            h24: f(0),
            d7: f(1),
            d30: f(2),
            d90: f(3),
        }
    }
}

#[derive(Debug, Serialize)]
struct ServerOut<'a> {
    name: Option<&'a str>,
    version: Option<&'a str>,
}

/// One target in `/api/v1/targets` (typed, so 10,000 of them serialise fast).
#[derive(Debug, Serialize)]
struct TargetOut<'a> {
    name: &'a str,
    url: &'a str,
    status: &'a str,
    verdict: Option<&'a str>,
    reason: Option<&'a str>,
    message: Option<&'a str>,
    last_checked_at: Option<String>,
    latency_ms: Option<f64>,
    interval_s: u64,
    era: Option<&'a str>,
    protocol_version: Option<&'a str>,
    server: ServerOut<'a>,
    tools_count: Option<i64>,
    schema_hash: Option<&'a str>,
    tls_days_left: Option<i64>,
    consecutive_failures: i64,
    open_incident_id: Option<i64>,
    uptime: Windows<Option<f64>>,
    uptime_probes: Windows<UptimeCounts>,
    /// For a transaction target (`<target>.<transaction>`), the configured target it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_of: Option<&'a str>,
    /// For a multi-region target: its last complete round (`{"verdict", "regions": [[region, up|null]]}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    regions: Option<&'a super::snapshot::RegionsView>,
}

impl<'a> TargetOut<'a> {
    fn new(t: &'a TargetView) -> Self {
        let s = &t.state;
        TargetOut {
            name: &s.name,
            url: &s.url,
            status: t.status,
            verdict: s.last_verdict.as_deref(),
            reason: s.last_reason.as_deref(),
            message: s.last_message.as_deref(),
            last_checked_at: s.last_checked_ms.and_then(iso),
            latency_ms: s.last_latency_ms,
            interval_s: t.interval_s,
            era: s.era.as_deref(),
            protocol_version: s.protocol_version.as_deref(),
            server: ServerOut {
                name: s.server_name.as_deref(),
                version: s.server_version.as_deref(),
            },
            tools_count: s.tools_count,
            schema_hash: s.schema_hash.as_deref(),
            tls_days_left: s.tls_days_left,
            consecutive_failures: s.consecutive_failures,
            open_incident_id: s.open_incident.as_ref().map(|i| i.id),
            uptime: Windows::from_fn(|i| t.uptime[i].ratio()),
            uptime_probes: Windows::from_fn(|i| t.uptime[i]),
            transaction_of: t.transaction_of.as_deref(),
            regions: t.regions.as_ref(),
        }
    }
}

/// The JSON of one target.
pub(crate) fn target_json(t: &TargetView) -> Value {
    serde_json::to_value(TargetOut::new(t)).unwrap_or(Value::Null)
}

#[derive(Debug, Serialize)]
struct TargetsOut<'a> {
    generated_at: Option<String>,
    targets: Vec<TargetOut<'a>>,
}

/// `GET /api/v1/targets`: serialised once per snapshot (on the first request) and served from memory after.
pub(crate) async fn targets(State(app): State<Arc<AppState>>) -> Response {
    let snap = app.snapshot.get();
    let body = snap
        .targets_json
        .get_or_init(|| {
            let out = TargetsOut {
                generated_at: iso(snap.generated_ms),
                targets: snap.targets.iter().map(TargetOut::new).collect(),
            };
            serde_json::to_vec(&out).unwrap_or_default().into()
        })
        .clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `GET /api/v1/targets/{name}`: the target with its 90 daily bars.
pub(crate) async fn target(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let snap = app.snapshot.get();
    let t = snap
        .by_name
        .get(&name)
        .and_then(|i| snap.targets.get(*i))
        .ok_or(ApiError::UnknownTarget(name))?;
    let mut v = target_json(t);
    v["days"] = t
        .days()
        .iter()
        .map(|d| {
            json!({
                "date": iso(d.day * DAY_MS).map(|s| s[..10].to_owned()),
                "up": d.up,
                "total": d.total,
                "uptime": (d.total > 0).then(|| f64::from(d.up) / f64::from(d.total)),
                "p50_ms": d.p50_ms,
                "p95_ms": d.p95_ms,
            })
        })
        .collect();
    Ok(Json(v))
}

/// Query of the history endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    resolution: Option<String>,
}

/// `GET /api/v1/targets/{name}/history?from=&to=&resolution=raw|hour|day`.
pub(crate) async fn history(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let snap = app.snapshot.get();
    let t = snap
        .by_name
        .get(&name)
        .and_then(|i| snap.targets.get(*i))
        .ok_or_else(|| ApiError::UnknownTarget(name.clone()))?;
    let id = t.state.id;
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or_else(now_ms);
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - 24 * HOUR_MS);
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let span = to - from;
    let resolution = match q.resolution.as_deref() {
        Some(r @ ("raw" | "hour" | "day")) => r,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "resolution: one of raw, hour, day".into(),
            ))
        }
        None if span <= 6 * HOUR_MS => "raw",
        None if span <= 14 * DAY_MS => "hour",
        None => "day",
    };
    let points: Value = match resolution {
        "raw" => {
            let rows = app.store.results(id, from, to, MAX_RAW_POINTS).await?;
            rows.iter()
                .rev()
                .map(|r| {
                    json!({
                        "at": iso(r.ts_ms), "verdict": r.verdict, "up": r.up, "maintenance": r.maintenance,
                        "reason": r.reason, "message": r.message, "latency_ms": r.latency_ms, "era": r.era,
                        "protocol_version": r.protocol_version, "server_version": r.server_version,
                        "tools_count": r.tools_count, "schema_hash": r.schema_hash, "tls_days_left": r.tls_days_left,
                        "timings_ms": r.timings.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()),
                        "steps": r.steps.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
                    })
                })
                .collect()
        }
        "hour" => {
            let rows = app
                .store
                .hour_buckets(id, from.div_euclid(DAY_MS), to.div_euclid(DAY_MS))
                .await?;
            rows.iter()
                .filter(|(h, _)| {
                    h * HOUR_MS >= from.div_euclid(HOUR_MS) * HOUR_MS && h * HOUR_MS < to
                })
                .map(|(h, b)| point_json(&HistoryPoint::from_bucket(h * HOUR_MS, b)))
                .collect()
        }
        _ => {
            let rows = app
                .store
                .day_rows(Some(id), from.div_euclid(DAY_MS))
                .await?;
            rows.iter()
                .filter(|r| r.day * DAY_MS < to)
                .map(|r| point_json(&HistoryPoint::from_bucket(r.day * DAY_MS, &r.bucket)))
                .collect()
        }
    };
    Ok(Json(json!({
        "target": name,
        "from": iso(from),
        "to": iso(to),
        "resolution": resolution,
        "points": points,
    })))
}

fn point_json(p: &HistoryPoint) -> Value {
    json!({
        "at": iso(p.ts_ms), "total": p.total, "up": p.up,
        "uptime": (p.total > 0).then(|| f64::from(p.up) / f64::from(p.total)),
        "verdicts": {"healthy": p.healthy, "degraded": p.degraded, "auth_required": p.auth_required, "unhealthy": p.unhealthy},
        "p50_ms": p.p50_ms, "p95_ms": p.p95_ms,
    })
}

/// Query of the list endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    target: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
}

fn target_id(app: &AppState, name: Option<&str>) -> Result<Option<i64>, ApiError> {
    match name {
        None => Ok(None),
        Some(n) => {
            let snap = app.snapshot.get();
            snap.by_name
                .get(n)
                .and_then(|i| snap.targets.get(*i))
                .map(|t| Some(t.state.id))
                .ok_or_else(|| ApiError::UnknownTarget(n.to_owned()))
        }
    }
}

/// `GET /api/v1/incidents?target=&state=open|all&before=&limit=`.
pub(crate) async fn incidents(
    State(app): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = target_id(&app, q.target.as_deref())?;
    let open_only = match q.state.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => return Err(ApiError::BadRequest("state: one of open, all".into())),
    };
    let before = q
        .before
        .as_deref()
        .map(|v| parse_time("before", v))
        .transpose()?
        .unwrap_or(i64::MAX);
    let rows = app
        .store
        .incidents(
            id,
            open_only,
            before,
            q.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "target": i.target, "opened_at": iso(i.opened_ms), "resolved_at": i.resolved_ms.and_then(iso),
                "open": i.resolved_ms.is_none(), "reason": i.reason, "message": i.message, "reminders": i.reminders,
                "duration_s": i.resolved_ms.unwrap_or_else(now_ms).saturating_sub(i.opened_ms) / 1000,
            })
        })
        .collect();
    Ok(Json(json!({ "incidents": list })))
}

/// `GET /api/v1/events?target=&kind=&before=&limit=`.
pub(crate) async fn events(
    State(app): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = target_id(&app, q.target.as_deref())?;
    let before = q
        .before
        .as_deref()
        .map(|v| parse_time("before", v))
        .transpose()?
        .unwrap_or(i64::MAX);
    let rows = app
        .store
        .events(
            id,
            q.kind.as_deref(),
            before,
            q.limit.unwrap_or(100).clamp(1, MAX_LIMIT),
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "target": e.target, "at": iso(e.ts_ms), "kind": e.kind,
                "severity": e.severity, "summary": e.summary, "details": e.details,
            })
        })
        .collect();
    Ok(Json(json!({ "events": list })))
}

/// Counts of alert sends by state, provider and kind (for operators checking the outbox).
pub(crate) async fn alerts(State(app): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let rows = app.store.alert_counts().await?;
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for (state, provider, kind, n) in rows {
        out.entry(provider).or_insert_with(|| json!({}))[format!("{kind}_{state}")] = json!(n);
    }
    Ok(Json(json!({ "providers": out })))
}
