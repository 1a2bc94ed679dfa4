//! Generic webhook: POST the JSON body of [`super::payload`] (documented in `docs/alerting.md`) with the
//! configured headers, and the transition's stable key ([`super::transition_key`]) as `Idempotency-Key`
//! (draft-ietf-httpapi-idempotency-key-header) and `webhook-id` (Standard Webhooks), the same on every retry
//! and from every replica.

use lifeline_mcp::probe::Secret;
use url::Url;

use crate::store::ClaimedAlert;

pub(super) fn request(
    client: &reqwest::Client,
    url: &Url,
    headers: &[(String, Secret)],
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let key = super::transition_key(a);
    let mut req = client
        .post(url.clone())
        .json(&super::payload(a))
        .header("Idempotency-Key", key.as_str())
        .header("webhook-id", key.as_str());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    req
}
