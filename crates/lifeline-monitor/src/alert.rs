//! Alert delivery: the dispatcher drains the outbox (claims due sends, delivers each through its provider with
//! a timeout and retries with exponential backoff, and records the outcome). A failed send is logged and
//! counted, never fatal. One file per provider: `webhook`, `slack`, `pagerduty`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{AlertConfig, AlertKind, Tuning};
use crate::metrics::{AlertLabels, Metrics};
use crate::scheduler::now_ms;
use crate::store::{AlertKindTag, ClaimedAlert, OutboxState, Store};

mod pagerduty;
mod slack;
mod webhook;

/// Sends claimed per poll.
const CLAIM_LIMIT: i64 = 32;

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No answer in time, or the connection failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The provider answered with a non-2xx status.
    #[error("provider answered HTTP {0}")]
    Status(u16),
}

impl SendError {
    /// A bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Transport(_) => "transport",
            SendError::Status(_) => "status",
        }
    }

    /// 4xx other than 408/429 will not get better by retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Transport(_) => true,
            SendError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
        }
    }
}

/// The HTTP client for alert sends: rustls with the Mozilla roots (ring), no proxy lookups.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("lifeline-monitor/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The stable deduplication key of an incident: `lifeline/<target>/<incident id>`.
pub fn dedup_key(target: &str, incident_id: i64) -> String {
    format!("lifeline/{target}/{incident_id}")
}

fn rfc3339(ms: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// One line for people: `everything is DOWN: connection refused`.
pub fn summary(a: &ClaimedAlert) -> String {
    let why = a
        .message
        .as_deref()
        .or(a.reason.as_deref())
        .unwrap_or("failing");
    match a.kind {
        AlertKindTag::Opened => format!("{} is DOWN: {why}", a.target),
        AlertKindTag::Reminder => format!("{} is still DOWN (reminder {}): {why}", a.target, a.seq),
        AlertKindTag::Resolved => format!("{} has RECOVERED", a.target),
    }
}

/// The generic JSON body (the webhook's, documented in `docs/alerting.md`).
pub fn payload(a: &ClaimedAlert) -> Value {
    json!({
        "version": 1,
        "kind": a.kind.as_str(),
        "summary": summary(a),
        "dedup_key": dedup_key(&a.target, a.incident_id),
        "target": { "name": a.target, "url": a.url },
        "incident": {
            "id": a.incident_id,
            "opened_at": rfc3339(a.opened_ms),
            "resolved_at": a.resolved_ms.and_then(rfc3339),
            "reason": a.reason,
            "message": a.message,
            "reminder": (a.kind == AlertKindTag::Reminder).then_some(a.seq),
        },
        "probe": {
            "verdict": a.context.get("verdict"),
            "reason": a.context.get("reason"),
            "message": a.context.get("message"),
            "at": a.context.get("at_ms").and_then(Value::as_i64).and_then(rfc3339),
        },
        "sent_at": rfc3339(now_ms()),
    })
}

/// Delivers one alert through `cfg`, retrying with backoff. Returns attempts made and the last error.
pub async fn deliver(
    client: &reqwest::Client,
    cfg: &AlertConfig,
    a: &ClaimedAlert,
    backoff: Duration,
) -> (i64, Option<SendError>) {
    let mut wait = backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let request = match &cfg.kind {
            AlertKind::Webhook { url, headers } => webhook::request(client, url, headers, a),
            AlertKind::Slack { webhook_url } => slack::request(client, webhook_url, a),
            AlertKind::PagerDuty {
                routing_key,
                events_url,
            } => pagerduty::request(client, events_url, routing_key, a),
        };
        let outcome = match request.timeout(cfg.timeout).send().await {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(SendError::Status(resp.status().as_u16())),
            // The error text can hold the URL, which can hold a secret (Slack): keep only its kind.
            Err(e) => Some(SendError::Transport(if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "connect failed".into()
            } else {
                "request error".into()
            })),
        };
        match outcome {
            None => return (attempts, None),
            Some(e) if e.is_retryable() && attempts <= i64::from(cfg.retries) => {
                tracing::warn!(alert.provider = %cfg.name, error = %e, attempts, "Alert send failed; retrying.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Some(e) => return (attempts, Some(e)),
        }
    }
}

/// What the dispatcher works with.
pub(crate) struct Dispatcher {
    pub(crate) store: Store,
    pub(crate) alerts: Arc<Vec<AlertConfig>>,
    pub(crate) client: reqwest::Client,
    /// This replica's name, used for claims.
    pub(crate) holder: String,
    pub(crate) tuning: Tuning,
    pub(crate) metrics: Arc<Metrics>,
}

/// Drains the outbox until `shutdown`, then makes one last pass so sends queued by the final results go out.
pub(crate) async fn run_dispatcher(
    d: Dispatcher,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let Dispatcher {
        store,
        alerts,
        client,
        holder,
        tuning,
        metrics,
    } = d;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = notify.notified() => {}
            () = tokio::time::sleep(tuning.dispatch_poll) => {}
        }
        dispatch_once(&store, &alerts, &client, &holder, &tuning, &metrics).await;
    }
    dispatch_once(&store, &alerts, &client, &holder, &tuning, &metrics).await;
}

/// Claims and delivers the due sends once; returns how many were handled.
pub(crate) async fn dispatch_once(
    store: &Store,
    alerts: &[AlertConfig],
    client: &reqwest::Client,
    holder: &str,
    tuning: &Tuning,
    metrics: &Metrics,
) -> usize {
    // The claim outlives the longest delivery (every attempt timing out plus backoff), so nobody steals it.
    let longest = alerts
        .iter()
        .map(|a| (a.timeout + Duration::from_secs(30)) * (a.retries + 1))
        .max()
        .unwrap_or(Duration::from_secs(60));
    let claimed = match store
        .claim_alerts(holder, now_ms(), longest, CLAIM_LIMIT)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            metrics.store_error("outbox");
            tracing::warn!(error = %e, "Claiming alert sends failed.");
            return 0;
        }
    };
    let n = claimed.len();
    let sends = claimed.into_iter().map(|a| async move {
        let (state, attempts, error) = match alerts.iter().find(|c| c.name == a.provider) {
            None => (OutboxState::Dropped, 0, Some("provider no longer configured".to_owned())),
            Some(cfg) => match deliver(client, cfg, &a, tuning.alert_backoff).await {
                (n, None) => (OutboxState::Sent, n, None),
                (n, Some(e)) => {
                    tracing::error!(alert.provider = %a.provider, alert.kind = a.kind.as_str(), target.name = %a.target, error = %e, attempts = n, "Alert send failed.");
                    (OutboxState::Failed, n, Some(e.to_string()))
                }
            },
        };
        metrics
            .alert_sends
            .get_or_create(&AlertLabels {
                provider: a.provider.clone(),
                kind: a.kind.as_str().to_owned(),
                outcome: match state {
                    OutboxState::Sent => "sent",
                    OutboxState::Failed => "failed",
                    OutboxState::Dropped => "dropped",
                }
                .to_owned(),
            })
            .inc();
        if state == OutboxState::Sent {
            tracing::info!(alert.provider = %a.provider, alert.kind = a.kind.as_str(), target.name = %a.target, incident.id = a.incident_id, "Alert sent.");
        }
        if let Err(e) = store.finish_alert(a.id, state, attempts, error.as_deref(), now_ms()).await {
            metrics.store_error("outbox");
            tracing::error!(error = %e, outbox.id = a.id, "Recording an alert outcome failed.");
        }
    });
    futures_util::future::join_all(sends).await;
    n
}
