//! Slack incoming webhook: `{"text": …}` with mrkdwn (Slack API "Sending messages using incoming webhooks").

use serde_json::json;
use url::Url;

use crate::store::{AlertKindTag, ClaimedAlert};

pub(super) fn request(
    client: &reqwest::Client,
    url: &Url,
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let icon = match a.kind {
        AlertKindTag::Opened | AlertKindTag::Reminder => ":red_circle:",
        AlertKindTag::Resolved => ":large_green_circle:",
    };
    let text = format!(
        "{icon} *{}*\n<{}|{}> · incident #{}",
        super::summary(a),
        a.url,
        a.url,
        a.incident_id
    );
    client.post(url.clone()).json(&json!({ "text": text }))
}
