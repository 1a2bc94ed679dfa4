//! `/admin/traffic` on the admin port: the group weights of the pool, read and switched
//! (`docs/gateway-replicas.md` §Switching versions without interrupting anyone).
//!
//! - `GET /admin/traffic`: `{"weights": {group: percent}, "set": bool, "endpoints": [...]}` (no token needed:
//!   the same facts as `/healthz` and `/metrics`).
//! - `POST /admin/traffic` with `Authorization: Bearer <token>` and `{"group": "green", "weight": 100}` (weight
//!   in percent, 0..=100; the other groups share the rest in proportion to their current weights): 200 with the
//!   new and previous weights and what was checked. Refused with **409** and the reasons in JSON unless every
//!   group whose weight grows passes the gate: each of its endpoints answers the shared probe engine (the same
//!   options as `/ready`, so `--ready-transaction` runs too) with a `healthy` verdict, and its tool list has no
//!   breaking drift (`lifeline_mcp::schema::diff`, what `lifeline check --snapshot` judges) against the live
//!   groups' (those with weight now, taken from a fresh probe of one of their endpoints). When no endpoint of
//!   the live groups answers, the gate fails closed: it compares with the newest tool list the gateway
//!   recorded of a live group (every healthy active probe records its group's; `"live_snapshot": "recorded"`,
//!   with `"live_snapshot_age_s"`), and without one it refuses (409, `"check": "live_snapshot"`).
//!
//! - `POST /admin/reload` (same token): a stdio upstream's reload (`upstream/stdio/generation.rs`, as `SIGHUP`),
//!   answered when the new generation serves: 200 `{"mode", "old_sessions", "verdict"}`, or 409 `{"error"}`
//!   when it did not start or failed its probe (the old generation keeps serving); 404 for an HTTP upstream.
//!
//! Authentication: the token file (`--admin-token-file`) is read on each call and compared in constant time
//! (`subtle`); a missing or wrong token is 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3). Without a token
//! file the route is 403 and changes nothing. One switch runs at a time (a second waits for the first).

use std::path::PathBuf;
use std::sync::Arc;

use crate::server::RequestBody;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use lifeline_mcp::{ProbeOptions, ProbeReport, Verdict};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::body::{self, Body};
use crate::upstream::{EndpointRef, Pool};

/// Largest request body accepted: 4 KiB (the request is two fields).
const MAX_BODY_BYTES: usize = 4 * 1024;

/// What the traffic routes need.
#[derive(Debug)]
pub(crate) struct TrafficAdmin {
    /// The HTTP pool; `None` for a stdio upstream (then the routes say so).
    pub(crate) pool: Option<Arc<Pool>>,
    /// `--admin-token-file`.
    pub(crate) token_file: Option<PathBuf>,
    /// The readiness probe's options (`Readiness::probe_options`).
    pub(crate) probe: ProbeOptions,
    /// One switch at a time.
    pub(crate) switching: tokio::sync::Mutex<()>,
    /// The upstream, for `/admin/reload`.
    pub(crate) upstream: Arc<crate::upstream::Upstream>,
    /// `--drain-timeout`: how long an old stdio generation may finish its sessions.
    pub(crate) drain_timeout: std::time::Duration,
}

/// The body of `POST /admin/traffic`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchRequest {
    group: String,
    weight: u32,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    body::json_response(status, &json!({"error": message.into()}))
}

impl TrafficAdmin {
    /// Answers `req` (path `/admin/traffic`).
    pub(crate) async fn handle(&self, req: Request<RequestBody>) -> Response<Body> {
        match *req.method() {
            Method::GET => self.show(),
            Method::POST => self.switch(req).await,
            _ => {
                let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST");
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                resp
            }
        }
    }

    /// Answers `POST /admin/reload`.
    pub(crate) async fn reload(&self, req: Request<RequestBody>) -> Response<Body> {
        if let Some(resp) = self.refusal(&req) {
            return resp;
        }
        if !self.upstream.has_children() {
            return error(
                StatusCode::NOT_FOUND,
                "not a stdio upstream: an HTTP pool switches versions with POST /admin/traffic",
            );
        }
        match crate::upstream::reload(&self.upstream, &self.probe, self.drain_timeout).await {
            Ok(done) => body::json_response(StatusCode::OK, &json!(done)),
            Err(err) => body::json_response(
                StatusCode::CONFLICT,
                &json!({"error": format!("reload refused: {err}")}),
            ),
        }
    }

    fn show(&self) -> Response<Body> {
        let Some(pool) = &self.pool else {
            return error(
                StatusCode::NOT_FOUND,
                "no HTTP upstream pool: group weights apply to upstream/upstreams (a stdio upstream reloads with SIGHUP)",
            );
        };
        body::json_response(
            StatusCode::OK,
            &json!({
                "weights": pool.group_weights(),
                "set": pool.has_group_weights(),
                "endpoints": pool.to_json(),
            }),
        )
    }

    /// Checks the bearer token; `Some` is the refusal to send.
    fn refusal(&self, req: &Request<RequestBody>) -> Option<Response<Body>> {
        let Some(path) = &self.token_file else {
            return Some(error(
                StatusCode::FORBIDDEN,
                "traffic switching is disabled: start the gateway with --admin-token-file",
            ));
        };
        let expected = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| crate::config::traffic::parse_admin_token(&t));
        let expected = match expected {
            Ok(t) => t,
            Err(err) => {
                tracing::error!(file = %path.display(), error = %err, "Cannot read the admin token file: refusing admin calls.");
                return Some(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the admin token file is unusable: {err}"),
                ));
            }
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return None;
        }
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required (Authorization: Bearer <token>)",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lifeline-admin\""),
        );
        Some(resp)
    }

    async fn switch(&self, req: Request<RequestBody>) -> Response<Body> {
        if let Some(resp) = self.refusal(&req) {
            return resp;
        }
        let Some(pool) = &self.pool else {
            return error(
                StatusCode::NOT_FOUND,
                "no HTTP upstream pool: group weights apply to upstream/upstreams (a stdio upstream reloads with SIGHUP)",
            );
        };
        let bytes = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body (at most {MAX_BODY_BYTES} bytes): {e}"),
                )
            }
        };
        let ask: SwitchRequest = match serde_json::from_slice(&bytes) {
            Ok(a) => a,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"group\": NAME, \"weight\": 0..100}}: {e}"),
                )
            }
        };
        if ask.weight > 100 {
            return error(
                StatusCode::BAD_REQUEST,
                "weight is a percent: between 0 and 100",
            );
        }
        if !pool.groups().contains(&ask.group) {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown group {:?}: the pool's groups are {:?}",
                    ask.group,
                    pool.groups()
                ),
            );
        }
        let _one = self.switching.lock().await;
        let before = pool.group_weights();
        let after = pool.weights_with(&ask.group, ask.weight);
        let gaining: Vec<&String> = after
            .iter()
            .filter(|(g, w)| **w > before.get(*g).copied().unwrap_or(0))
            .map(|(g, _)| g)
            .collect();
        let live: Vec<&String> = before
            .iter()
            .filter(|(g, w)| **w > 0 && !gaining.contains(g))
            .map(|(g, _)| g)
            .collect();
        let gate = self.gate(pool, &gaining, &live).await;
        if !gate.reasons.is_empty() {
            tracing::warn!(group = %ask.group, weight = ask.weight, reasons = gate.reasons.len(), "Traffic switch refused by the check gate.");
            return body::json_response(
                StatusCode::CONFLICT,
                &json!({
                    "error": "refused: the target group does not pass the check gate",
                    "group": ask.group,
                    "weight": ask.weight,
                    "reasons": gate.reasons,
                    "checked": gate.checked,
                    "live_snapshot": gate.live_snapshot,
                    "weights": before,
                }),
            );
        }
        pool.set_group_weights(after.clone());
        body::json_response(
            StatusCode::OK,
            &json!({
                "weights": after,
                "previous": before,
                "checked": gate.checked,
                "live_snapshot": gate.live_snapshot,
                "live_snapshot_age_s": gate.snapshot_age_s,
            }),
        )
    }

    /// Probes every endpoint of the `gaining` groups and one endpoint of each `live` group, and judges.
    async fn gate(&self, pool: &Pool, gaining: &[&String], live: &[&String]) -> Gate {
        let mut gate = Gate::default();
        let mut targets: Vec<EndpointRef> = Vec::new();
        for g in gaining {
            let members = pool.group_members(g);
            if members.is_empty() {
                gate.reasons.push(json!({
                    "group": g,
                    "check": "endpoints",
                    "message": "the group has no endpoint now (not resolved yet, or none configured)",
                }));
            }
            targets.extend(members);
        }
        if targets.is_empty() {
            gate.live_snapshot = "not_needed";
            return gate;
        }
        // The live snapshot: the first live endpoint taking new work that answers healthy, per live group.
        let mut snapshot: Option<(String, Vec<Value>)> = None;
        'live: for g in live {
            for ep in pool
                .group_members(g)
                .into_iter()
                .filter(|e| pool.takes_new_work(e))
            {
                if let Some(r) = ep.probe(self.probe.clone()).await {
                    pool.record_tools(&ep.0, &r);
                    if r.verdict == Verdict::Healthy && r.tools_count.is_some() {
                        snapshot = Some((ep.label().to_owned(), r.tools));
                        break 'live;
                    }
                }
            }
        }
        gate.live_snapshot = match (&snapshot, live.is_empty()) {
            (Some(_), _) => "taken",
            (None, true) => "not_needed",
            (None, false) => {
                // Fail closed: no live endpoint answers, so compare with the newest snapshot the gateway recorded
                // of a live group (its active probes record each healthy one); with none, refuse.
                let recorded = live
                    .iter()
                    .filter_map(|g| pool.group_snapshot(g))
                    .max_by_key(|s| s.at);
                match recorded {
                    Some(s) => {
                        gate.snapshot_age_s = Some(s.at.elapsed().as_secs());
                        snapshot = Some((s.endpoint.clone(), s.tools.clone()));
                        "recorded"
                    }
                    None => {
                        gate.reasons.push(json!({
                            "groups": live, "check": "live_snapshot",
                            "message": "no endpoint of the live group answers and the gateway has recorded no \
                                        snapshot of its tools: the drift gate cannot run (set the weights with \
                                        `traffic:` in the config file and restart, to switch without the gate)",
                        }));
                        "unavailable"
                    }
                }
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for ep in targets {
            let opts = self.probe.clone();
            set.spawn(async move {
                let report = ep.probe(opts).await;
                (ep, report)
            });
        }
        let mut results: Vec<(EndpointRef, Option<ProbeReport>)> = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        results.sort_by(|a, b| a.0.label().cmp(b.0.label()));
        for (ep, report) in results {
            let Some(report) = report else {
                gate.reasons.push(json!({
                    "endpoint": ep.label(), "group": ep.group(), "check": "probe",
                    "verdict": "down", "reason": "timeout",
                    "message": "the probe did not finish within --ready-timeout",
                }));
                continue;
            };
            pool.record_tools(&ep.0, &report);
            let failed_step = report.transactions.iter().find(|t| t.failed());
            let mut entry = json!({
                "endpoint": ep.label(), "group": ep.group(),
                "verdict": report.verdict, "schema_hash": report.schema_hash,
            });
            if report.verdict != Verdict::Healthy || failed_step.is_some() {
                gate.reasons.push(json!({
                    "endpoint": ep.label(), "group": ep.group(), "check": "probe",
                    "verdict": report.verdict, "reason": report.reason.or_else(|| failed_step.and_then(|t| t.reason)),
                    "message": report.failure.as_ref().map(|f| f.message.clone())
                        .or_else(|| failed_step.map(|t| format!("transaction {} failed", t.name))),
                }));
            } else if let Some((live_ep, live_tools)) = &snapshot {
                let drift = lifeline_mcp::schema::diff(live_tools, &report.tools);
                if drift.is_breaking() {
                    gate.reasons.push(json!({
                        "endpoint": ep.label(), "group": ep.group(), "check": "drift",
                        "against": live_ep,
                        "message": "breaking tool-schema drift against the live group",
                        "changes": drift.changes,
                    }));
                }
                entry["drift"] = json!({"against": live_ep, "changes": drift.changes});
            }
            gate.checked.push(entry);
        }
        gate
    }
}

/// The gate's findings.
#[derive(Debug, Default)]
struct Gate {
    /// Why the switch is refused; empty when it may go ahead.
    reasons: Vec<Value>,
    /// Every target endpoint probed, with its verdict and drift.
    checked: Vec<Value>,
    /// `taken` (a live endpoint answered now), `recorded` (none did: the newest snapshot recorded of a live
    /// group, see `Pool::record_tools`), `unavailable` (none did and none was recorded: refused) or
    /// `not_needed` (no live group, or no target).
    live_snapshot: &'static str,
    /// For `recorded`: the snapshot's age in seconds.
    snapshot_age_s: Option<u64>,
}
