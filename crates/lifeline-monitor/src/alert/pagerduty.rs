//! PagerDuty Events API v2: `trigger` on open, `resolve` on resolve, with `dedup_key` stable per target and
//! incident so a retried or repeated trigger never opens a second PagerDuty incident.

use lifeline_mcp::probe::Secret;
use serde_json::json;
use url::Url;

use crate::store::{AlertKindTag, ClaimedAlert};

pub(super) fn request(
    client: &reqwest::Client,
    url: &Url,
    routing_key: &Secret,
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let action = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => "trigger",
        AlertKindTag::Resolved => "resolve",
    };
    let mut body = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": super::dedup_key(&a.target, a.incident_id),
    });
    if action == "trigger" {
        body["payload"] = json!({
            "summary": super::summary(a),
            "source": a.url,
            "severity": "critical",
            "component": a.target,
            "class": a.reason,
            "custom_details": super::payload(a),
        });
        body["client"] = json!("lifeline monitor");
    }
    client.post(url.clone()).json(&body)
}
