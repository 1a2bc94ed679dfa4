//! Discord channel webhook (Discord API "Execute Webhook", `POST /webhooks/{id}/{token}`): `content` with the
//! one-line summary and one embed with the facts, within Discord's limits (content 2000 characters, embed title
//! 256, description 4096, field value 1024). `allowed_mentions: {parse: []}` so an error message that
//! happens to contain `@everyone` pings nobody. Discord answers `204 No Content`; a `429` is retried with
//! backoff like any rate limit.

use serde_json::{json, Value};

use super::truncate;
use crate::store::{AlertKindTag, ClaimedAlert};

/// Embed colour of an open incident (red) and of a resolved one (green), as `0xRRGGBB`.
const RED: u32 = 0x00E0_1E5A;
const GREEN: u32 = 0x002E_B67D;

/// The JSON body for `a` (POSTed as is to the webhook URL).
pub(super) fn message(a: &ClaimedAlert) -> Value {
    let colour = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => RED,
        AlertKindTag::Resolved => GREEN,
    };
    let summary = super::summary(a);
    let mut fields = vec![
        json!({"name": "Target", "value": truncate(&a.target, 1024), "inline": true}),
        json!({"name": "Incident", "value": format!("#{}", a.incident_id), "inline": true}),
    ];
    if let Some(reason) = &a.reason {
        fields.push(json!({"name": "Reason", "value": truncate(reason, 1024), "inline": true}));
    }
    fields.push(json!({"name": "URL", "value": truncate(&a.url, 1024), "inline": false}));
    json!({
        "username": "Lifeline",
        "content": truncate(&summary, 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": truncate(&summary, 256),
            "description": truncate(a.message.as_deref().unwrap_or(""), 4096),
            "color": colour,
            "fields": fields,
            "footer": {"text": super::dedup_key(&a.target, a.incident_id)},
            "timestamp": super::rfc3339(a.resolved_ms.unwrap_or(a.opened_ms)),
        }],
    })
}
