//! Prometheus Alertmanager, API v2: `POST <url>/api/v2/alerts` with a JSON array of alerts
//! (`labels`, `annotations`, `startsAt`, `endsAt`; Alertmanager's `api/v2/openapi.yaml` `postableAlerts`,
//! and prometheus.io "Alerting → Clients").
//!
//! One alert per incident, identified by its labels (Alertmanager deduplicates on the label set):
//! `alertname="LifelineTargetDown"`, `target`, `reason` (the reason that opened the incident), `severity="critical"`,
//! then the provider's own `labels:`, which win. The annotations carry the summary, the message, the URL,
//! the incident id and the dedup key; they are not identifying and always take the latest value.
//!
//! Timing, as Prometheus does it: a firing alert carries `endsAt = now + 4 × resend_interval`, and the
//! dispatcher re-sends every open incident every `resend_interval` ([`super::resend_firing`]), so
//! Alertmanager keeps it active; were the monitor to stop re-sending (dead, partitioned), the alert resolves
//! by itself after four missed rounds instead of firing forever. The resolve sends the same labels with
//! `endsAt` = the moment the incident resolved. Reminders are never queued here: repeating a notification is
//! Alertmanager's `repeat_interval`.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeline_mcp::probe::Secret;
use serde_json::{json, Map, Value};
use url::Url;

use crate::config::ALERTMANAGER_ALERTNAME;
use crate::scheduler::now_ms;
use crate::store::{AlertKindTag, ClaimedAlert, FiringIncident};

/// Alerts per re-send request: bounds one body to a few hundred kB.
pub(super) const BATCH: usize = 256;

/// How many missed re-send rounds Alertmanager waits before resolving the alert by itself (Prometheus uses 4).
const ENDS_AFTER_ROUNDS: u32 = 4;

/// What one alert is made of, from an outbox row or an open incident.
struct Incident<'a> {
    target: &'a str,
    url: &'a str,
    incident_id: i64,
    opened_ms: i64,
    reason: Option<&'a str>,
    message: Option<&'a str>,
}

impl<'a> From<&'a ClaimedAlert> for Incident<'a> {
    fn from(a: &'a ClaimedAlert) -> Self {
        Incident {
            target: &a.target,
            url: &a.url,
            incident_id: a.incident_id,
            opened_ms: a.opened_ms,
            reason: a.reason.as_deref(),
            message: a.message.as_deref(),
        }
    }
}

impl<'a> From<&'a FiringIncident> for Incident<'a> {
    fn from(f: &'a FiringIncident) -> Self {
        Incident {
            target: &f.target,
            url: &f.url,
            incident_id: f.incident_id,
            opened_ms: f.opened_ms,
            reason: f.reason.as_deref(),
            message: f.message.as_deref(),
        }
    }
}

/// The request for one outbox row: `opened` fires, `resolved` ends at the resolve time.
pub(super) fn request(
    client: &reqwest::Client,
    url: &Url,
    headers: &[(String, Secret)],
    labels: &BTreeMap<String, String>,
    resend_interval: Duration,
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let ends_ms = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => firing_ends_ms(resend_interval),
        AlertKindTag::Resolved => a.resolved_ms.unwrap_or_else(now_ms),
    };
    let body = json!([alert(
        &Incident::from(a),
        labels,
        ends_ms,
        &super::summary(a)
    )]);
    post(client, url, headers, &body)
}

/// The re-send of open incidents as firing alerts (one request per [`BATCH`]).
pub(super) fn resend_request(
    client: &reqwest::Client,
    url: &Url,
    headers: &[(String, Secret)],
    labels: &BTreeMap<String, String>,
    resend_interval: Duration,
    firing: &[FiringIncident],
) -> reqwest::RequestBuilder {
    let ends_ms = firing_ends_ms(resend_interval);
    let alerts: Vec<Value> = firing
        .iter()
        .map(|f| {
            let incident = Incident::from(f);
            let why = super::why(f.message.as_deref(), f.reason.as_deref());
            alert(
                &incident,
                labels,
                ends_ms,
                &super::down_summary(&f.target, why),
            )
        })
        .collect();
    post(client, url, headers, &Value::Array(alerts))
}

/// `<url>/api/v2/alerts`, keeping any path prefix Alertmanager is served under (`--web.route-prefix`).
pub(super) fn alerts_url(base: &Url) -> Url {
    let mut u = base.clone();
    let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
    u.set_path(&path);
    u
}

fn post(
    client: &reqwest::Client,
    url: &Url,
    headers: &[(String, Secret)],
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut req = client.post(alerts_url(url)).json(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    req
}

/// `endsAt` of a firing alert: [`ENDS_AFTER_ROUNDS`] re-send rounds from now.
fn firing_ends_ms(resend_interval: Duration) -> i64 {
    let ahead = resend_interval.saturating_mul(ENDS_AFTER_ROUNDS);
    now_ms().saturating_add(i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX / 2))
}

fn alert(i: &Incident<'_>, extra: &BTreeMap<String, String>, ends_ms: i64, summary: &str) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), ALERTMANAGER_ALERTNAME.into());
    labels.insert("target".into(), i.target.into());
    if let Some(reason) = i.reason {
        labels.insert("reason".into(), reason.into());
    }
    labels.insert("severity".into(), "critical".into());
    for (k, v) in extra {
        labels.insert(k.clone(), v.clone().into());
    }
    let mut annotations = Map::new();
    annotations.insert("summary".into(), summary.into());
    if let Some(m) = i.message {
        annotations.insert("description".into(), m.into());
    }
    annotations.insert("url".into(), i.url.into());
    annotations.insert("incident_id".into(), i.incident_id.to_string().into());
    annotations.insert(
        "dedup_key".into(),
        super::dedup_key(i.target, i.incident_id).into(),
    );
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": super::rfc3339(i.opened_ms),
        "endsAt": super::rfc3339(ends_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_url_keeps_a_path_prefix() {
        for (base, want) in [
            ("http://am:9093", "http://am:9093/api/v2/alerts"),
            ("http://am:9093/", "http://am:9093/api/v2/alerts"),
            (
                "https://h/alertmanager/",
                "https://h/alertmanager/api/v2/alerts",
            ),
            (
                "https://h/alertmanager",
                "https://h/alertmanager/api/v2/alerts",
            ),
        ] {
            assert_eq!(alerts_url(&Url::parse(base).unwrap()).as_str(), want);
        }
    }

    #[test]
    fn labels_identify_the_incident_and_extra_labels_win() {
        let i = Incident {
            target: "svc",
            url: "http://h/mcp",
            incident_id: 7,
            opened_ms: 1_700_000_000_000,
            reason: Some("connect_refused"),
            message: Some("connection refused"),
        };
        let extra = BTreeMap::from([
            ("team".to_owned(), "mcp".to_owned()),
            ("severity".to_owned(), "page".to_owned()),
        ]);
        let a = alert(&i, &extra, 1_700_000_060_000, "svc is DOWN");
        assert_eq!(
            a["labels"],
            json!({"alertname": "LifelineTargetDown", "target": "svc", "reason": "connect_refused",
                   "severity": "page", "team": "mcp"})
        );
        assert_eq!(a["annotations"]["dedup_key"], "lifeline/svc/7");
        assert_eq!(a["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(a["endsAt"], "2023-11-14T22:14:20Z");
    }
}
