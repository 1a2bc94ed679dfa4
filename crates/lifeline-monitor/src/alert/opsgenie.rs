//! Opsgenie Alert API v2: `opened` creates an alert (`POST <api_url>/v2/alerts`), `resolved` closes it
//! (`POST <api_url>/v2/alerts/<alias>/close?identifierType=alias`), both with `Authorization: GenieKey <key>`.
//! The `alias` is the incident's dedup key (`lifeline/<target>/<incident id>`): Opsgenie deduplicates creates on
//! it while the alert is open, so a retried create never opens a second alert, and the close finds the right
//! one. Field limits from the API: `message` 130 characters, `alias` 512, `description` 15,000, `source` 100.
//! Opsgenie answers `202 Accepted` (the request is processed asynchronously).

use lifeline_mcp::probe::Secret;
use serde_json::json;
use url::Url;

use super::truncate;
use crate::store::{AlertKindTag, ClaimedAlert};

const SOURCE: &str = "lifeline monitor";

pub(super) fn request(
    client: &reqwest::Client,
    api_url: &Url,
    api_key: &Secret,
    priority: &str,
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let alias = super::dedup_key(&a.target, a.incident_id);
    let mut url = api_url.clone();
    let base = api_url.path().trim_end_matches('/').to_owned();
    let req = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => {
            url.set_path(&format!("{base}/v2/alerts"));
            client.post(url).json(&json!({
                "message": truncate(&super::summary(a), 130),
                "alias": truncate(&alias, 512),
                "description": truncate(a.message.as_deref().unwrap_or(""), 15_000),
                "entity": truncate(&a.target, 512),
                "source": SOURCE,
                "priority": priority,
                "tags": ["lifeline", a.target],
                "details": {
                    "url": a.url,
                    "reason": a.reason,
                    "incident_id": a.incident_id.to_string(),
                    "opened_at": super::rfc3339(a.opened_ms),
                },
            }))
        }
        AlertKindTag::Resolved => {
            url.set_path(&format!("{base}/v2/alerts/"));
            // One path segment: the alias's `/` are percent-encoded.
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(&alias).push("close");
            }
            url.set_query(Some("identifierType=alias"));
            client.post(url).json(&json!({
                "source": SOURCE,
                "note": super::summary(a),
            }))
        }
    };
    req.header(
        reqwest::header::AUTHORIZATION,
        format!("GenieKey {}", api_key.expose()),
    )
}
