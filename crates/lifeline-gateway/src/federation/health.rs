//! Each federated server's health, the input of its policy (`health: required|optional`): the gateway keeps its
//! own session with every server (the control session) and every `health_interval` sends `ping` on it
//! (2025-11-25 `basic/utilities/ping`), or `initialize` when it has none (at start, after a failure, after the
//! server forgot it). On (re)connecting, and after a `list_changed`, it lists the server's tools, prompts and
//! resources to the end (bounded pages), so names and collisions are known before a client asks.
//!
//! State changes: `starting` → `ready` ↔ `down`. Leaving or returning to `ready` sends
//! `notifications/tools/list_changed` (and prompts, resources) to every client of the server: its entries
//! leave the merged lists while it is not ready and come back with it. The admin routes read the states:
//! `GET /ready` (503 while a required server is not ready, or while draining) and `GET /servers`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Response, StatusCode};
use lifeline_core::Phase;
use serde_json::{json, Value};

use super::client::{self, ExchangeError, Link};
use super::naming::{Names, Offer};
use super::{lock, Federation};
use crate::body::{self, Body};
use crate::config::federation::HealthPolicy;

/// Most pages read per list when the health check catalogs a server.
const MAX_PAGES: usize = 50;

/// A server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum State {
    /// Not yet reached since start.
    #[default]
    Starting,
    /// The last check passed.
    Ready,
    /// The last check failed.
    Down,
}

impl State {
    /// `starting`, `ready`, `down`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Down => "down",
        }
    }
}

/// A server's health record.
#[derive(Debug, Default)]
pub(crate) struct Health {
    pub(crate) state: State,
    /// Why it is down (the last error).
    pub(crate) reason: Option<String>,
    /// When the state last changed.
    pub(crate) since: Option<SystemTime>,
    /// The gateway's own session with the server.
    pub(crate) control: Option<Link>,
    /// When the last check ended.
    pub(crate) checked: Option<Instant>,
}

/// Checks server `i` every `health_interval` until the drain.
pub(crate) async fn watch(fed: Arc<Federation>, i: usize) {
    let every = fed.servers[i].cfg.health_interval;
    let stop = fed.shutdown.reached(Phase::Draining);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = check(&fed, i) => {}
            _ = &mut stop => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}

/// One check of server `i`, and what follows from it.
async fn check(fed: &Federation, i: usize) {
    let server = &fed.servers[i];
    let control = lock(&server.health).control.clone();
    let mut fresh = false;
    let result: Result<(), ExchangeError> = async {
        if let Some(link) = &control {
            match client::check(&server.upstream, link, fed.timeout).await {
                Ok(()) => return Ok(()),
                Err(ExchangeError::Expired) => {}
                Err(e) => return Err(e),
            }
        }
        let link = fed.connect(i).await?;
        lock(&server.health).control = Some(link);
        fresh = true;
        Ok(())
    }
    .await;
    let stale = std::mem::take(&mut lock(&server.catalog).stale);
    if result.is_ok() && (fresh || stale) {
        catalog(fed, i).await;
    }
    let (old, new) = {
        let mut h = lock(&server.health);
        let old = h.state;
        match &result {
            Ok(()) => {
                h.state = State::Ready;
                h.reason = None;
            }
            Err(e) => {
                h.state = State::Down;
                h.reason = Some(e.to_string());
                if let Some(link) = h.control.take() {
                    // The link is dead or unreachable; a late DELETE is the server's to ignore.
                    drop(link);
                }
            }
        }
        if old != h.state {
            h.since = Some(SystemTime::now());
        }
        h.checked = Some(Instant::now());
        (old, h.state)
    };
    fed.metrics
        .federation
        .server_state(&server.cfg.name, new == State::Ready, old != new);
    if old != new {
        match &result {
            Ok(()) => {
                tracing::info!(server = %server.cfg.name, from = old.as_str(), "Federated server ready.")
            }
            Err(e) => {
                tracing::warn!(server = %server.cfg.name, from = old.as_str(), error = %e, "Federated server down.")
            }
        }
        // Its entries enter or leave the merged lists (2025-11-25 `server/tools` §List Changed Notification).
        if old == State::Ready || new == State::Ready {
            for method in [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
            ] {
                fed.broadcast(i, method);
            }
        }
    }
}

/// Lists server `i`'s tools, prompts and resources on its control session and rebuilds the naming tables.
async fn catalog(fed: &Federation, i: usize) {
    let server = &fed.servers[i];
    let Some(link) = lock(&server.health).control.clone() else {
        return;
    };
    let tools = list_all(fed, i, &link, "tools/list", "tools", "name").await;
    let prompts = list_all(fed, i, &link, "prompts/list", "prompts", "name").await;
    let uris = list_all(fed, i, &link, "resources/list", "resources", "uri").await;
    {
        let mut cat = lock(&server.catalog);
        cat.tools = tools;
        cat.prompts = prompts;
        cat.uris = uris.into_iter().take(super::MAX_URIS).collect();
    }
    rebuild_names(fed);
}

/// Every page of a list (bounded), the `field` of each entry.
async fn list_all(
    fed: &Federation,
    i: usize,
    link: &Link,
    method: &str,
    key: &str,
    field: &str,
) -> Vec<String> {
    let server = &fed.servers[i];
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map_or_else(|| json!({}), |c| json!({"cursor": c}));
        let Ok(reply) = client::request(&server.upstream, link, method, &params, fed.timeout).await
        else {
            break;
        };
        let result = reply.result().unwrap_or(Value::Null);
        out.extend(
            result[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t[field].as_str().map(str::to_owned)),
        );
        match result["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out
}

/// Rebuilds the tool and prompt naming tables from every server's catalog, logging new collisions.
pub(crate) fn rebuild_names(fed: &Federation) {
    let catalogs: Vec<(Vec<String>, Vec<String>)> = fed
        .servers
        .iter()
        .map(|s| {
            let c = lock(&s.catalog);
            (c.tools.clone(), c.prompts.clone())
        })
        .collect();
    let build = |prompts: bool| {
        Names::build(
            &fed.servers
                .iter()
                .zip(&catalogs)
                .map(|(s, (t, p))| Offer {
                    server: &s.cfg.name,
                    prefix: s.cfg.prefix,
                    names: if prompts { p } else { t },
                })
                .collect::<Vec<_>>(),
        )
    };
    let tools = Arc::new(build(false));
    let prompts = Arc::new(build(true));
    let before: Vec<String> = {
        let t = fed.tools.read().unwrap_or_else(|p| p.into_inner());
        let p = fed.prompts.read().unwrap_or_else(|p| p.into_inner());
        t.collisions()
            .iter()
            .chain(p.collisions())
            .cloned()
            .collect()
    };
    for c in tools.collisions().iter().chain(prompts.collisions()) {
        if !before.contains(c) {
            tracing::warn!(collision = %c, "Federation name collision.");
        }
    }
    *fed.tools.write().unwrap_or_else(|p| p.into_inner()) = tools;
    *fed.prompts.write().unwrap_or_else(|p| p.into_inner()) = prompts;
}

impl Federation {
    /// `GET /ready` with a federation: 503 while draining or while a required server is not ready.
    pub(crate) fn ready(&self) -> Response<Body> {
        let draining = self.shutdown.phase() >= Phase::Draining;
        let missing: Vec<&str> = self
            .servers
            .iter()
            .filter(|s| {
                s.cfg.health == HealthPolicy::Required && lock(&s.health).state != State::Ready
            })
            .map(|s| s.cfg.name.as_str())
            .collect();
        let ok = !draining && missing.is_empty();
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let reason = if draining {
            Value::String("draining".to_owned())
        } else if missing.is_empty() {
            Value::Null
        } else {
            Value::String(format!(
                "required servers not ready: {}",
                missing.join(", ")
            ))
        };
        body::json_response(
            status,
            &json!({"status": if ok {"ready"} else {"not_ready"}, "reason": reason, "servers": self.states()}),
        )
    }

    /// `GET /healthz` with a federation: the admin listener's own answer `base` with `servers` added (name,
    /// state, policy, reason of each).
    pub(crate) async fn healthz(&self, base: Response<Body>) -> Response<Body> {
        use http_body_util::BodyExt as _;
        let (parts, body) = base.into_parts();
        // The admin listener's own small JSON answer (not a client's body: no bound needed).
        let buf = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => bytes::Bytes::new(),
        };
        let mut doc = serde_json::from_slice::<Value>(&buf).unwrap_or_else(|_| json!({}));
        doc["servers"] = Value::Array(
            self.servers
                .iter()
                .map(|s| {
                    let h = lock(&s.health);
                    json!({"name": s.cfg.name, "state": h.state.as_str(), "health": s.cfg.health, "reason": h.reason})
                })
                .collect(),
        );
        body::json_response(parts.status, &doc)
    }

    /// Every server's name → `{state, reason}`.
    fn states(&self) -> Value {
        Value::Object(
            self.servers
                .iter()
                .map(|s| {
                    let h = lock(&s.health);
                    (
                        s.cfg.name.clone(),
                        json!({"state": h.state.as_str(), "reason": h.reason}),
                    )
                })
                .collect(),
        )
    }

    /// `GET /servers`: each server's configuration summary, state, offered names and collisions.
    pub(crate) fn servers_view(&self) -> Response<Body> {
        let tools = self.tools.read().unwrap_or_else(|p| p.into_inner()).clone();
        let prompts = self
            .prompts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let servers: Vec<Value> = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let h = lock(&s.health);
                let cat = lock(&s.catalog);
                let since = h.since.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs());
                json!({
                    "name": s.cfg.name,
                    "upstream": s.upstream.label(),
                    "health": s.cfg.health,
                    "prefix": s.cfg.prefix,
                    "era": s.cfg.era,
                    "state": h.state.as_str(),
                    "server_info": h.control.as_ref().map(|l| l.init["serverInfo"].clone()),
                    "protocol_version": h.control.as_ref().map(|l| l.version.clone()),
                    "reason": h.reason,
                    "since_unix_s": since,
                    "endpoint": format!("/servers/{}/mcp", s.cfg.name),
                    "tools": cat.tools.iter().filter_map(|t| tools.shown(i, t)).collect::<Vec<_>>(),
                    "prompts": cat.prompts.iter().filter_map(|p| prompts.shown(i, p)).collect::<Vec<_>>(),
                    "resources": cat.uris.len(),
                })
            })
            .collect();
        let collisions: Vec<&String> = tools
            .collisions()
            .iter()
            .chain(prompts.collisions())
            .collect();
        body::json_response(
            StatusCode::OK,
            &json!({"servers": servers, "collisions": collisions}),
        )
    }
}
