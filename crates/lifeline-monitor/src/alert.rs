//! Alert delivery: the dispatcher drains the outbox (claims due sends, delivers each through its provider with
//! a timeout and retries with exponential backoff, and records the outcome). A failed send is logged and
//! counted, never fatal. One file per provider: `webhook`, `slack`, `pagerduty`, `alertmanager`, `teams`,
//! `discord`, `opsgenie`, `email`.
//!
//! Alertmanager also gets the open incidents re-sent as firing every `resend_interval` (`resend_firing`):
//! its "Sending alerts" contract expects clients to re-send active alerts, and resolves one whose `endsAt`
//! passes without news. The re-send runs in the dispatcher's own loop, between outbox passes, so a resolve
//! queued by the recorder is never overtaken by a stale firing re-send from the same replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{AlertConfig, AlertKind, Tuning};
use crate::metrics::{AlertLabels, Metrics};
use crate::scheduler::now_ms;
use crate::store::{AlertKindTag, ClaimedAlert, FiringIncident, OutboxState, Store};

mod alertmanager;
mod discord;
mod email;
mod opsgenie;
mod pagerduty;
mod slack;
mod teams;
mod webhook;

/// Sends claimed per poll.
const CLAIM_LIMIT: i64 = 32;
/// Most open incidents re-sent to one Alertmanager per round (there is at most one per target).
const RESEND_LIMIT: i64 = 10_000;

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No answer in time, or the connection failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The provider answered with a non-2xx status.
    #[error("provider answered HTTP {0}")]
    Status(u16),
    /// The provider refused the message for good (an SMTP 5xx reply, RFC 5321 §4.2.1), or it could not be
    /// built (a bad address).
    #[error("provider refused: {0}")]
    Rejected(String),
}

impl SendError {
    /// A bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Transport(_) => "transport",
            SendError::Status(_) => "status",
            SendError::Rejected(_) => "rejected",
        }
    }

    /// 4xx other than 408/429 will not get better by retrying, nor will a refusal.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Transport(_) => true,
            SendError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            SendError::Rejected(_) => false,
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

/// The key of one incident transition (issue 14): `lifeline/<target>/<incident id>/<kind>[/<seq>]`, e.g.
/// `lifeline/everything/42/opened`, `…/42/reminder/2`, `…/42/resolved`. Every delivery attempt of that
/// transition, from any replica, carries the same key, so a receiver that remembers keys acts on it once.
/// Sent by the webhook as `Idempotency-Key` and `webhook-id` (Standard Webhooks); PagerDuty and Opsgenie
/// get the incident's [`dedup_key`] instead, which their own state machines apply idempotently.
pub fn transition_key(a: &ClaimedAlert) -> String {
    let base = dedup_key(&a.target, a.incident_id);
    match a.kind {
        AlertKindTag::Reminder => format!("{base}/reminder/{}", a.seq),
        k => format!("{base}/{}", k.as_str()),
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// One line for people: `everything is DOWN: connection refused`.
pub fn summary(a: &ClaimedAlert) -> String {
    let why = why(a.message.as_deref(), a.reason.as_deref());
    if crate::agent::evaluate::is_subject(&a.target) && a.kind == AlertKindTag::Resolved {
        // A probe-fleet episode (issue 14) is not a target recovering: its message says what ended.
        return format!("RESOLVED: {why}");
    }
    match a.kind {
        AlertKindTag::Opened => down_summary(&a.target, why),
        AlertKindTag::Reminder => format!("{} is still DOWN (reminder {}): {why}", a.target, a.seq),
        AlertKindTag::Resolved => format!("{} has RECOVERED", a.target),
    }
}

/// What failed, for people: the message, else the reason label.
fn why<'a>(message: Option<&'a str>, reason: Option<&'a str>) -> &'a str {
    message.or(reason).unwrap_or("failing")
}

/// `<target> is DOWN: <why>`: the summary of an open incident (a probe-fleet subject's is its `why`).
fn down_summary(target: &str, why: &str) -> String {
    if crate::agent::evaluate::is_subject(target) {
        return why.to_owned();
    }
    format!("{target} is DOWN: {why}")
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

/// `text` cut to at most `max` characters (an ellipsis marks the cut), for providers with field limits.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// One attempt: sends `a` through `cfg`'s provider within `cfg.timeout`.
async fn attempt(
    client: &reqwest::Client,
    cfg: &AlertConfig,
    a: &ClaimedAlert,
) -> Result<(), SendError> {
    let request = match &cfg.kind {
        AlertKind::Webhook { url, headers } => webhook::request(client, url, headers, a),
        AlertKind::Slack { webhook_url } => slack::request(client, webhook_url, a),
        AlertKind::PagerDuty {
            routing_key,
            events_url,
        } => pagerduty::request(client, events_url, routing_key, a),
        AlertKind::Alertmanager {
            url,
            headers,
            labels,
            resend_interval,
        } => alertmanager::request(client, url, headers, labels, *resend_interval, a),
        AlertKind::Teams { webhook_url } => {
            client.post(webhook_url.clone()).json(&teams::message(a))
        }
        AlertKind::Discord { webhook_url } => {
            client.post(webhook_url.clone()).json(&discord::message(a))
        }
        AlertKind::Opsgenie {
            api_key,
            api_url,
            priority,
        } => opsgenie::request(client, api_url, api_key, priority, a),
        AlertKind::Email(settings) => return email::send(settings, cfg.timeout, a).await,
    };
    send_http(request, cfg.timeout).await
}

/// Sends one HTTP request with `timeout`; any 2xx is success.
async fn send_http(request: reqwest::RequestBuilder, timeout: Duration) -> Result<(), SendError> {
    match request.timeout(timeout).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(SendError::Status(resp.status().as_u16())),
        // The error text can hold the URL, which can hold a secret (Slack): keep only its kind.
        Err(e) => Err(SendError::Transport(if e.is_timeout() {
            "timed out".into()
        } else if e.is_connect() {
            "connect failed".into()
        } else {
            "request error".into()
        })),
    }
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
        match attempt(client, cfg, a).await.err() {
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
    /// True while this replica holds shard 0: only then does it re-send firing alerts to Alertmanager.
    pub(crate) singleton: Arc<std::sync::atomic::AtomicBool>,
}

/// Drains the outbox until `shutdown`, then makes one last pass so sends queued by the final results go out.
/// Between passes it re-sends the firing alerts to each Alertmanager whose `resend_interval` is due (the
/// first round right at start, so a restarted or newly elected replica refreshes Alertmanager at once).
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
        singleton,
    } = d;
    let mut next_resend: HashMap<&str, Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = notify.notified() => {}
            () = tokio::time::sleep(tuning.dispatch_poll) => {}
        }
        dispatch_once(&store, &alerts, &client, &holder, &tuning, &metrics).await;
        if !singleton.load(std::sync::atomic::Ordering::Acquire) {
            continue;
        }
        for cfg in alerts.iter() {
            let AlertKind::Alertmanager {
                resend_interval, ..
            } = &cfg.kind
            else {
                continue;
            };
            let now = Instant::now();
            if next_resend.get(cfg.name.as_str()).is_some_and(|t| *t > now) {
                continue;
            }
            next_resend.insert(&cfg.name, now + *resend_interval);
            resend_firing(&store, cfg, &client, &metrics).await;
        }
    }
    dispatch_once(&store, &alerts, &client, &holder, &tuning, &metrics).await;
}

/// One re-send round to the Alertmanager `cfg`: every open incident as a firing alert, in batches, one
/// attempt each (the next round is the retry). Counted as `kind="resend"`; nothing is sent when nothing fires.
pub(crate) async fn resend_firing(
    store: &Store,
    cfg: &AlertConfig,
    client: &reqwest::Client,
    metrics: &Metrics,
) {
    let AlertKind::Alertmanager {
        url,
        headers,
        labels,
        resend_interval,
    } = &cfg.kind
    else {
        return;
    };
    let firing: Vec<FiringIncident> = match store.firing_incidents(RESEND_LIMIT).await {
        Ok(f) => f,
        Err(e) => {
            metrics.store_error("outbox");
            tracing::warn!(error = %e, "Reading the open incidents to re-send failed.");
            return;
        }
    };
    for batch in firing.chunks(alertmanager::BATCH) {
        let request =
            alertmanager::resend_request(client, url, headers, labels, *resend_interval, batch);
        let outcome = send_http(request, cfg.timeout).await;
        if let Err(e) = &outcome {
            tracing::warn!(alert.provider = %cfg.name, error = %e, alerts = batch.len(), "Re-sending firing alerts failed; the next round retries.");
        }
        metrics
            .alert_sends
            .get_or_create(&AlertLabels {
                provider: cfg.name.clone(),
                kind: "resend".to_owned(),
                outcome: if outcome.is_ok() { "sent" } else { "failed" }.to_owned(),
            })
            .inc();
    }
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
                    // Dead-lettered: kept in the outbox as `failed` with its error, counted, never retried.
                    metrics.alerts_dead_lettered.inc();
                    tracing::error!(alert.provider = %a.provider, alert.kind = a.kind.as_str(), target.name = %a.target, error = %e, attempts = n, "Alert send failed; dead-lettered.");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IncidentOp, NewAlert, ProbeRow, RecordOp, TargetState};

    /// A replica that dies after the receiver accepted a send but before the row was marked `sent`: the row
    /// is claimed again by another replica once the claim expires, and carries the same transition key.
    #[tokio::test]
    async fn a_resend_after_a_lost_claim_carries_the_same_key() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ids = store
            .sync_targets(&[("svc".into(), "http://svc/mcp".into())], 1_000)
            .await
            .unwrap();
        let state = TargetState {
            id: ids[0].1,
            name: "svc".into(),
            ..TargetState::default()
        };
        let op = RecordOp {
            state,
            tools_json: None,
            result: ProbeRow::new(2_000, lifeline_mcp::Verdict::Unhealthy),
            events: vec![],
            incident: IncidentOp::Open {
                at_ms: 2_000,
                reason: None,
                message: None,
                summary: "down".into(),
                alerts: vec![NewAlert {
                    provider: "hook".into(),
                    due_ms: 2_000,
                    context: json!({}),
                }],
            },
        };
        store.record(&[op]).await.unwrap();
        let lease = Duration::from_millis(10);
        let first = store.claim_alerts("r1", 3_000, lease, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        // r1 "crashes": no finish. Within the claim nobody else gets the row; after it, r2 does.
        assert!(store
            .claim_alerts("r2", 3_005, lease, 10)
            .await
            .unwrap()
            .is_empty());
        let again = store.claim_alerts("r2", 3_011, lease, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, first[0].id);
        let key = transition_key(&first[0]);
        assert_eq!(transition_key(&again[0]), key);
        assert_eq!(key, format!("lifeline/svc/{}/opened", first[0].incident_id));
    }

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly10!", 10), "exactly10!");
        assert_eq!(truncate("0123456789abc", 10), "012345678…");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("abc", 0), "");
    }
}
