//! Microsoft Teams through a Workflows webhook (the "Post to a channel when a webhook request is received"
//! template, which replaced the Office 365 connectors): `POST` a message with one Adaptive Card attachment
//! (`contentType: application/vnd.microsoft.card.adaptive`, card schema 1.4). The workflow answers
//! `202 Accepted`.

use serde_json::{json, Value};

use crate::store::{AlertKindTag, ClaimedAlert};

/// The message: a bold headline coloured by state, then the incident's facts.
/// The JSON body for `a` (POSTed as is to the webhook URL).
pub(super) fn message(a: &ClaimedAlert) -> Value {
    let colour = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => "Attention",
        AlertKindTag::Resolved => "Good",
    };
    let mut facts = vec![
        json!({"title": "Target", "value": a.target}),
        json!({"title": "URL", "value": a.url}),
        json!({"title": "Incident", "value": format!("#{} ({})", a.incident_id, super::dedup_key(&a.target, a.incident_id))}),
    ];
    if let Some(reason) = &a.reason {
        facts.push(json!({"title": "Reason", "value": reason}));
    }
    if let Some(at) = super::rfc3339(a.opened_ms) {
        facts.push(json!({"title": "Opened", "value": at}));
    }
    if let Some(at) = a.resolved_ms.and_then(super::rfc3339) {
        facts.push(json!({"title": "Resolved", "value": at}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": super::summary(a), "weight": "Bolder", "size": "Medium",
                     "color": colour, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}
