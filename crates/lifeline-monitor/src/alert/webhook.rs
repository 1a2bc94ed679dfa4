//! Generic webhook: POST the JSON body of [`super::payload`] (documented in `docs/alerting.md`) with the
//! configured headers.

use lifeline_mcp::probe::Secret;
use url::Url;

use crate::store::ClaimedAlert;

pub(super) fn request(
    client: &reqwest::Client,
    url: &Url,
    headers: &[(String, Secret)],
    a: &ClaimedAlert,
) -> reqwest::RequestBuilder {
    let mut req = client.post(url.clone()).json(&super::payload(a));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    req
}
