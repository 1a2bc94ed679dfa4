//! The agents' API under the monitor's web server (issue 14, "Regions"). Agents connect outward to it; every
//! request carries `Authorization: Bearer <token>` ([`super::token`]); a missing, unknown or revoked token
//! gets 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3).
//!
//! - `GET /api/v1/agent/assignments` → `{"agent", "region", "targets": [{"name", "url", "interval_ms",
//!   "timeout_ms", "credentials"}]}`: the targets whose `regions` include the agent's region, each with the
//!   credentials the central side would probe it with (`credentials`; absent when none). The agent's token
//!   is therefore as sensitive as the targets' own credentials (`docs/monitor-ha.md` §Regions, "Trust").
//! - `POST /api/v1/agent/results` with `{"results": [AgentResult, …]}` (at most [`MAX_RESULTS_PER_PUSH`]) →
//!   `{"accepted": n, "rejected": [{"index", "error"}]}`. A result for a target not assigned to the agent's
//!   region is rejected by index, never dropped silently. The region is the agent's, never the body's.
//! - `GET /api/v1/agents` (public, like the other read APIs) → `{"agents": [{"name", "region", "last_seen_ms",
//!   "lag_ms", "results_last_minute", "results_total"}]}`: each configured agent's row of the store's `agents`
//!   table (written by whichever replica received the call, [`crate::store::AgentSeen`]), as of the last
//!   snapshot (`tuning.snapshot_refresh`, 5 s by default): every replica answers the same.
//! - `GET /api/v1/targets/{name}/regions` → `{"target", "regions", "quorum", "rounds": [{"start_ms", "verdict",
//!   "failing", "reporting"}], "schema_divergence": {region: hash} | null, "results": [RegionResult, …]}`: the
//!   complete rounds of the last hour (newest first, at most 60) with their verdicts, the regions' latest
//!   tool-schema hashes when they differ, and the stored region results of the last hour, oldest first (404
//!   for an unknown target). Read from the store: every replica answers the same.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::result::AgentResult;
use super::token::{authenticate, TokenError};
use crate::config::AgentConfig;
use crate::scheduler::now_ms;
use crate::store::AgentCall;
use crate::web::AppState;

/// Most results in one push: 5,000 (a spool drains in several pushes).
pub const MAX_RESULTS_PER_PUSH: usize = 5_000;

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

fn agent<'a>(app: &'a AppState, headers: &HeaderMap) -> Result<&'a AgentConfig, TokenError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate(auth, &app.config.agents)
}

/// `GET /api/v1/agent/assignments`.
pub(crate) async fn assignments(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, TokenError> {
    let a = agent(&app, &headers)?;
    let call = AgentCall {
        name: &a.name,
        region: &a.region,
        at_ms: now_ms(),
    };
    if let Err(e) = app.store.agent_pulled(&call).await {
        // Only liveness is lost (the assignment comes from the configuration): the agent still gets its work.
        tracing::warn!(agent = %a.name, error = %e, "Recording an agent's pull failed.");
        app.metrics.store_error("agents");
    }
    let targets: Vec<_> = app
        .config
        .targets
        .iter()
        .filter(|t| t.transaction.is_none())
        .filter(|t| {
            t.regions
                .as_ref()
                .is_some_and(|r| r.regions.contains(&a.region))
        })
        .collect::<Vec<_>>();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let mut v = json!({
            "name": t.name,
            "url": t.url.as_str(),
            "interval_ms": t.interval.as_millis() as u64,
            "timeout_ms": t.timeout.as_millis() as u64,
        });
        match credentials(t).await {
            Ok(Some(c)) => v["credentials"] = c,
            Ok(None) => {}
            Err(e) => {
                // Fails closed: without its credentials the target is not assigned (the agent would only
                // report auth failures), and the operator sees why.
                tracing::warn!(target.name = %t.name, agent = %a.name, error = %e, "A target's credentials could not be read; not assigned this time.");
                continue;
            }
        }
        out.push(v);
    }
    Ok(Json(json!({ "agent": a.name, "region": a.region, "targets": out })).into_response())
}

/// The credentials an agent needs to probe `t` as the central side would: `{"headers": {name: value},
/// "bearer_token", "auth": {"client_id", "auth_method", "client_secret", "scope", "token_url"}}`, each only
/// when configured; `None` when none is. Secret files are read now, so a rotated file reaches the agents at
/// their next pull. Only client-credentials OAuth clients with a client secret are delegated
/// (`config/regions.rs` refuses a refresh token or a private key beside `regions:`).
///
/// Errors: a secret file that cannot be read (the message names the file, never the secret).
pub(crate) async fn credentials(
    t: &crate::config::TargetConfig,
) -> Result<Option<serde_json::Value>, String> {
    use lifeline_mcp::probe::ClientAuth;
    let mut c = serde_json::Map::new();
    if !t.headers.is_empty() {
        let h: serde_json::Map<String, serde_json::Value> = t
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().into()))
            .collect();
        c.insert("headers".into(), h.into());
    }
    if let Some(b) = &t.bearer_token {
        c.insert("bearer_token".into(), b.expose().into());
    }
    if let Some(client) = t.auth.as_ref().and_then(|a| a.oauth.as_ref()) {
        let cfg = client.config();
        let secret = match &cfg.auth {
            ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => {
                Some(s.read().await?.expose().to_owned())
            }
            ClientAuth::None => None,
            ClientAuth::PrivateKeyJwt { .. } => {
                return Err("private_key_jwt clients are not delegated to agents".into())
            }
        };
        if cfg.refresh_token.is_some() {
            return Err("refresh-token clients are not delegated to agents".into());
        }
        c.insert(
            "auth".into(),
            json!({
                "client_id": cfg.client_id,
                "auth_method": cfg.auth.method_name(),
                "client_secret": secret,
                "scope": cfg.scope,
                "token_url": cfg.token_url.as_ref().map(|u| u.as_str()),
            }),
        );
    }
    Ok((!c.is_empty()).then_some(c.into()))
}

/// `GET /api/v1/agents`, from the snapshot.
pub(crate) async fn agents(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let snapshot = app.snapshot.get();
    let seen = &snapshot.agents;
    let list: Vec<_> = app
        .config
        .agents
        .iter()
        .map(|a| {
            let s = seen.get(&a.name).cloned().unwrap_or_default();
            json!({
                "name": a.name,
                "region": a.region,
                "last_seen_ms": s.last_seen_ms,
                "lag_ms": s.lag_ms,
                "results_last_minute": s.results_last_minute,
                "results_total": s.results_total,
            })
        })
        .collect();
    Json(json!({ "agents": list }))
}

/// `GET /api/v1/targets/{name}/regions`: from the store, so every replica answers the same.
pub(crate) async fn target_regions(
    State(app): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, crate::web::api::ApiError> {
    use super::evaluate::{last_complete_round, round_verdict, schema_hashes, verdict_name};
    let t = app
        .config
        .targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| crate::web::api::ApiError::UnknownTarget(name.clone()))?;
    let now = now_ms();
    let results = if t.regions.is_some() {
        app.store
            .region_results_between(Some(&t.name), now - 3_600_000, i64::MAX)
            .await
            .map_err(crate::web::api::ApiError::Store)?
    } else {
        Vec::new()
    };
    let mut rounds = Vec::new();
    if t.regions.is_some() {
        let (last, interval) = last_complete_round(t, now);
        let mut start = last;
        while start >= now - 3_600_000 && rounds.len() < MAX_ROUNDS_SHOWN {
            let v = round_verdict(t, &results, start);
            let (failing, reporting) = match &v {
                super::quorum::RoundVerdict::Down { failing }
                | super::quorum::RoundVerdict::Regional { failing } => {
                    (Some(failing.clone()), None)
                }
                super::quorum::RoundVerdict::Unknown { reporting } => {
                    (None, Some(reporting.clone()))
                }
                super::quorum::RoundVerdict::Up => (None, None),
            };
            rounds.push(json!({
                "start_ms": start,
                "verdict": verdict_name(&v),
                "failing": failing,
                "reporting": reporting,
            }));
            start -= interval;
        }
    }
    Ok(Json(json!({
        "target": t.name,
        "regions": t.regions.as_ref().map(|r| &r.regions),
        "quorum": t.regions.as_ref().map(|r| r.quorum),
        "rounds": rounds,
        "schema_divergence": schema_hashes(t, &results).filter(|(d, _)| *d).map(|(_, by)| by),
        "results": results,
    })))
}

/// Rounds listed at most by `GET /api/v1/targets/{name}/regions`: 60, newest first, within the last hour.
const MAX_ROUNDS_SHOWN: usize = 60;

/// The body of `POST /api/v1/agent/results`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Push {
    results: Vec<AgentResult>,
}

/// `POST /api/v1/agent/results`.
pub(crate) async fn results(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, TokenError> {
    let a = agent(&app, &headers)?;
    let push: Push = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("results: {e}") })),
            )
                .into_response())
        }
    };
    if push.results.len() > MAX_RESULTS_PER_PUSH {
        return Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": format!(
                "at most {MAX_RESULTS_PER_PUSH} results per push, not {}", push.results.len()
            ) })),
        )
            .into_response());
    }
    let mut ok = Vec::with_capacity(push.results.len());
    let mut rejected = Vec::new();
    for (i, r) in push.results.into_iter().enumerate() {
        let assigned = app.config.targets.iter().any(|t| {
            t.name == r.target
                && t.regions
                    .as_ref()
                    .is_some_and(|g| g.regions.contains(&a.region))
        });
        if assigned {
            ok.push(r);
        } else {
            rejected.push(json!({
                "index": i,
                "error": format!("target `{}` is not assigned to region `{}`", r.target, a.region),
            }));
        }
    }
    let accepted = ok.len();
    app.metrics
        .agents
        .results
        .get_or_create(&super::metrics::AgentLabels {
            agent: a.name.clone(),
        })
        .inc_by(accepted as u64);
    app.metrics.agents.rejected.inc_by(rejected.len() as u64);
    // Stored first: a push the database refused answers 503, so the agent keeps it spooled and sends it again
    // (the table's key makes that idempotent). The agent's `agents` row moves in the same transaction.
    let call = AgentCall {
        name: &a.name,
        region: &a.region,
        at_ms: now_ms(),
    };
    if let Err(e) = app.store.record_region_results(&call, &ok).await {
        tracing::warn!(agent = %a.name, error = %e, "Storing agent results failed; the agent will send them again.");
        app.metrics.store_error("region_results");
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "storage unavailable" })),
        )
            .into_response());
    }
    Ok(Json(json!({ "accepted": accepted, "rejected": rejected })).into_response())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use serde_json::Value;

    use super::super::quorum::RoundVerdict;
    use super::super::token::token_hash;
    use super::*;

    /// Three agents on 127.0.0.2, .3 and .4 talk to a real central web server on 127.0.0.1.
    #[tokio::test]
    async fn agents_pull_push_and_a_revoked_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut agents_yaml = String::from("agents:\n");
        for (name, region) in [("a2", "eu-west"), ("a3", "us-east"), ("a4", "ap-south")] {
            let f = dir.path().join(format!("{name}.sha256"));
            std::fs::write(&f, token_hash(&format!("token-{name}"))).unwrap();
            agents_yaml.push_str(&format!(
                "  - {{ name: {name}, region: {region}, token_files: [{}] }}\n",
                f.display()
            ));
        }
        let yaml = format!(
            "{agents_yaml}targets:\n  - name: api\n    url: http://127.0.0.1:9/mcp\n    \
             regions: [eu-west, us-east, ap-south]\n    headers: {{ X-Api-Key: k3y }}\n    bearer_token: b3arer\n  \
             - name: local\n    url: http://127.0.0.1:9/mcp\n"
        );
        let app = super::super::central_for_tests(&yaml, dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
            listener,
            crate::web::router(app.clone()),
        )));

        let client = |last: u8| {
            reqwest::Client::builder()
                .local_address(IpAddr::from([127, 0, 0, last]))
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap()
        };
        let now = crate::scheduler::now_ms();
        let round = now - now % 60_000;
        let push = |c: reqwest::Client, name: &'static str, up: bool| {
            let base = base.clone();
            async move {
                c.post(format!("{base}/api/v1/agent/results"))
                    .bearer_auth(format!("token-{name}"))
                    .json(&json!({ "results": [
                        { "target": "api", "probed_at_ms": round + 1_000, "up": up, "latency_ms": 7 },
                        { "target": "local", "probed_at_ms": round + 1_000, "up": up, "latency_ms": 7 },
                    ]}))
                    .send()
                    .await
                    .unwrap()
            }
        };

        // Pull: the agent's region's targets only.
        let r = client(2)
            .get(format!("{base}/api/v1/agent/assignments"))
            .bearer_auth("token-a2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["region"], "eu-west");
        assert_eq!(v["targets"].as_array().unwrap().len(), 1);
        assert_eq!(v["targets"][0]["name"], "api");
        // The target's credentials go with it, so the agent probes it as the central side would.
        assert_eq!(
            v["targets"][0]["credentials"],
            json!({ "headers": { "X-Api-Key": "k3y" }, "bearer_token": "b3arer" })
        );

        // One region reports failing: unknown (1 of 3 reporting), never down.
        let r = push(client(2), "a2", false).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["accepted"], 1);
        assert_eq!(v["rejected"][0]["index"], 1, "{v}");
        let verdict = || crate::agent::stored_verdict(&app, "api", round);
        let v = verdict().await;
        assert!(matches!(v, RoundVerdict::Unknown { .. }), "{v:?}");
        // A second region up: quorum reached, one failing of two is regional.
        assert_eq!(push(client(3), "a3", true).await.status(), 200);
        assert_eq!(
            verdict().await,
            RoundVerdict::Regional {
                failing: vec!["eu-west".into()]
            }
        );
        // The third region failing too: down.
        assert_eq!(push(client(4), "a4", false).await.status(), 200);
        assert_eq!(
            verdict().await,
            RoundVerdict::Down {
                failing: vec!["ap-south".into(), "eu-west".into()]
            }
        );
        let seen = || async { app.store.agents_seen(now_ms()).await.unwrap() };
        assert_eq!(seen().await["a3"].results_total, 1);
        assert_eq!(
            app.store
                .count_region_results("api", round, round + 60_000)
                .await
                .unwrap(),
            3
        );
        let v: Value = reqwest::get(format!("{base}/api/v1/targets/api/regions"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 3, "{v}");
        assert_eq!(v["quorum"]["min_failing"], 2);
        // The agents' liveness comes from the store's `agents` table through the snapshot (and its metrics).
        crate::web::snapshot::Builder::new(
            app.store.clone(),
            app.config.clone(),
            app.metrics.clone(),
        )
        .build(&app.snapshot)
        .await
        .unwrap();
        let v: Value = reqwest::get(format!("{base}/api/v1/agents"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["agents"][1]["name"], "a3", "{v}");
        assert_eq!(v["agents"][1]["results_total"], 1, "{v}");
        assert_eq!(v["agents"][1]["results_last_minute"], 1, "{v}");
        assert!(v["agents"][0]["last_seen_ms"].as_i64() >= Some(now), "{v}");
        assert!(v["agents"][1]["lag_ms"].as_i64() >= Some(0), "{v}");
        let text = app.metrics.encode();
        for line in [
            r#"lifeline_monitor_agent_results_total{agent="a3"} 1"#,
            r#"lifeline_monitor_agent_rejected_results_total 3"#,
            r#"lifeline_monitor_agent_last_seen_timestamp_seconds{agent="a2"} "#,
            r#"lifeline_monitor_agent_lag_seconds{agent="a4"} "#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }

        // Revoked by removing its hash file: 401 with WWW-Authenticate, nothing ingested.
        std::fs::remove_file(dir.path().join("a4.sha256")).unwrap();
        let r = push(client(4), "a4", true).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let r = client(4)
            .get(format!("{base}/api/v1/agent/assignments"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(seen().await["a4"].results_total, 1);
        server.abort();
    }
}
