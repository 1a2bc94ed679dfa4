//! The gateway's HTTP client towards authorization servers (discovery, JWKS, introspection): reqwest with
//! rustls, every call bounded by `fetch_timeout`, no redirects followed (a credential-bearing POST must not be
//! re-sent elsewhere; a JWKS that moved is a configuration change), and every body read bounded.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

/// Largest body read from an authorization server: 1 MiB.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a call to an authorization server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Connection, TLS or timeout.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// A status other than 200.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// Larger than [`MAX_BODY_BYTES`].
    #[error("answered more than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// A cheap-to-clone client.
#[derive(Debug, Clone)]
pub(crate) struct Client(reqwest::Client);

/// A response's headers and body.
pub(crate) struct Fetched {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Result<Client, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lifeline-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client(client))
    }

    /// `GET url` accepting JSON; 200 only.
    pub(crate) async fn get(&self, url: &url::Url) -> Result<Fetched, FetchError> {
        let resp = self
            .0
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await?;
        read(resp).await
    }

    /// `POST url` with a form body and extra headers; 200 only.
    pub(crate) async fn post_form(
        &self,
        url: &url::Url,
        headers: HeaderMap,
        form: String,
    ) -> Result<Fetched, FetchError> {
        let resp = self
            .0
            .post(url.clone())
            .headers(headers)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await?;
        read(resp).await
    }
}

async fn read(mut resp: reqwest::Response) -> Result<Fetched, FetchError> {
    if resp.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(resp.status().as_u16()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        headers,
        body: Bytes::from(body),
    })
}
