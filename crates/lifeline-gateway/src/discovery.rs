//! Discovery (issue 16 §Discovery; `docs/gateway.md` §Discovery): a Server Card for every MCP endpoint the gateway
//! fronts and an AI Catalog listing them, following the experimental extension
//! `modelcontextprotocol/experimental-ext-server-card` (`docs/discovery.md` and `schema.ts`, read at 8924e08; the
//! shapes and constants live in `lifeline_mcp::probe::card`). Routes (client listener, public: no `auth:` layer,
//! since cards hold only public metadata, §Security Considerations):
//!
//! - `GET|HEAD <endpoint>/server-card`: the card of `<endpoint>` (the MCP path; with `servers:` also each
//!   `/servers/NAME/mcp`), `application/mcp-server-card+json` (§Hosted Server Card Location);
//! - `GET|HEAD /.well-known/ai-catalog.json`: every card, as `application/ai-catalog+json` entries with a `url`
//!   (§AI Catalog, §Server Card Entries);
//! - `OPTIONS` on both: the CORS preflight.
//!
//! Both carry the extension's CORS headers (§CORS Requirements), `Cache-Control: public, max-age=3600` and a
//! strong `ETag` (a digest of the body), and answer `If-None-Match` with 304 (§Caching).
//!
//! What a card says comes from what the gateway already knows, never from a probe of its own: for the single
//! upstream, the readiness probe's report (`serverInfo` name and version, the protocol version it spoke), else a
//! pool endpoint's newest passing probe or a stdio session's `initialize` result ([`Upstream::server_facts`]); the
//! federation's own answers for federated endpoints (`federation/card.rs`: the identity and versions the gateway
//! gives there, and the title, description and website a server gave on the health check's session). Fields set
//! in `card:` win. A card whose name or version is not known yet (no endpoint passed a probe; stdio session mode
//! before its first session, since the spare is only pinged) is a 503 with `Retry-After` until it is, or until
//! the operator sets `card.name` and `card.version`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use lifeline_mcp::probe::card::{
    card_name, CACHE_CONTROL, CARD_MEDIA_TYPE, CARD_SCHEMA, CARD_SUFFIX, CATALOG_MEDIA_TYPE,
    CATALOG_PATH, CATALOG_SPEC_VERSION, MAX_DESCRIPTION_CHARS,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::body::{self, Body};
use crate::config::{CardConfig, CardFields};
use crate::federation::Federation;
use crate::ready::Readiness;
use crate::upstream::Upstream;

/// Seconds a client is told to wait for a card that is not known yet.
const RETRY_AFTER_SECS: &str = "5";
/// The namespace of a card name made from a `serverInfo.name` without one, when no `card.public_url` is set.
const FALLBACK_NAMESPACE: &str = "local";

/// What an endpoint's card is made from (before the operator's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `serverInfo.name` as the endpoint's clients see it.
    pub(crate) name: Option<String>,
    /// `serverInfo.version`.
    pub(crate) version: Option<String>,
    /// `serverInfo.title`.
    pub(crate) title: Option<String>,
    /// `serverInfo.description`.
    pub(crate) description: Option<String>,
    /// `serverInfo.websiteUrl`.
    pub(crate) website_url: Option<String>,
    /// The protocol versions the endpoint speaks.
    pub(crate) versions: Vec<String>,
}

impl Facts {
    /// The facts a server gives about itself in an `initialize` result (2025-11-25 `basic/lifecycle`
    /// §Initialization: `serverInfo` with `name`, `version`, `title`, `description`, `websiteUrl`, and
    /// `protocolVersion`) or a `server/discover` result (2026-07-28 `basic/lifecycle`: `_meta`
    /// `io.modelcontextprotocol/serverInfo` and `supportedVersions`). Members that are absent or not strings are
    /// `None`; never an error.
    pub(crate) fn of_result(result: &Value) -> Facts {
        let info = match &result["serverInfo"] {
            Value::Null => &result["_meta"][lifeline_mcp::era::META_SERVER_INFO],
            v => v,
        };
        let text = |k: &str| info[k].as_str().map(str::to_owned);
        let versions = match (&result["protocolVersion"], &result["supportedVersions"]) {
            (Value::String(v), _) => vec![v.clone()],
            (_, Value::Array(l)) => l
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Facts {
            name: text("name"),
            version: text("version"),
            title: text("title"),
            description: text("description"),
            website_url: text("websiteUrl"),
            versions,
        }
    }
}

/// The discovery routes of the client listener.
#[derive(Debug)]
pub(crate) struct Discovery {
    cfg: CardConfig,
    mcp_path: String,
    readiness: Arc<Readiness>,
    upstream: Arc<Upstream>,
    federation: Option<Arc<Federation>>,
}

impl Discovery {
    /// `None` when `card.enabled` is false.
    pub(crate) fn new(
        cfg: &CardConfig,
        mcp_path: &str,
        readiness: Arc<Readiness>,
        upstream: Arc<Upstream>,
        federation: Option<Arc<Federation>>,
    ) -> Option<Discovery> {
        cfg.enabled.then(|| Discovery {
            cfg: cfg.clone(),
            mcp_path: mcp_path.to_owned(),
            readiness,
            upstream,
            federation,
        })
    }

    /// The answer to `req` when it asks for a card or the catalog; `None` for every other request (the proxy's or
    /// the federation's).
    pub(crate) fn answer<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let path = req.uri().path();
        let card_of = path
            .strip_suffix(CARD_SUFFIX)
            .filter(|endpoint| self.endpoints().iter().any(|e| e == endpoint));
        if path != CATALOG_PATH && card_of.is_none() {
            return None;
        }
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            Method::OPTIONS => return Some(preflight()),
            _ => {
                let mut resp = body::json_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &json!({"error": "only GET, HEAD and OPTIONS"}),
                );
                resp.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
                return Some(resp);
            }
        };
        let Some(base) = self.base(req.headers()) else {
            return Some(body::json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "a Host header naming this gateway is required (or set card.public_url)"}),
            ));
        };
        let (doc, media) = match card_of {
            Some(endpoint) => match self.card(endpoint, &base) {
                Some(card) => (card, CARD_MEDIA_TYPE),
                None => return Some(not_yet()),
            },
            None => (self.catalog(&base), CATALOG_MEDIA_TYPE),
        };
        Some(cacheable(&doc, media, req.headers(), head))
    }

    /// Every MCP endpoint path with a card: the MCP path, and with `servers:` each `/servers/NAME/mcp`.
    fn endpoints(&self) -> Vec<String> {
        match &self.federation {
            Some(fed) => fed.card_endpoints(),
            None => vec![self.mcp_path.clone()],
        }
    }

    /// `scheme://host[:port]` clients reach the gateway at: `card.public_url`, else `http://` and the request's
    /// `Host` (only host-name characters accepted). `None` without a usable `Host`.
    fn base(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(url) = &self.cfg.public_url {
            return Some(url.clone());
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        let ok = !host.is_empty()
            && host.len() <= 255
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        ok.then(|| format!("http://{host}"))
    }

    /// The card of `endpoint`, or `None` while its name or version is unknown.
    fn card(&self, endpoint: &str, base: &str) -> Option<Value> {
        let (facts, fields) = match &self.federation {
            Some(fed) => fed.card_facts(endpoint, &self.cfg.fields)?,
            None => (self.upstream_facts(), self.cfg.fields.clone()),
        };
        let namespace = namespace(base, self.cfg.public_url.is_some());
        build(&facts, &fields, &format!("{base}{endpoint}"), &namespace)
    }

    /// The single upstream's facts: the readiness probe's last report when it holds a `serverInfo`, else what
    /// the upstream saw itself ([`Upstream::server_facts`]: a pool's endpoint probes, a stdio session's
    /// `initialize`).
    fn upstream_facts(&self) -> Facts {
        let from_probe = self.readiness.last().and_then(|last| {
            let report = &last.report;
            let info = report.server_info.as_ref()?;
            Some(Facts {
                name: info.name.clone(),
                version: info.version.clone(),
                versions: report.protocol_version.iter().cloned().collect(),
                ..Facts::default()
            })
        });
        from_probe
            .or_else(|| self.upstream.server_facts())
            .unwrap_or_default()
    }

    /// The AI Catalog: one entry per endpoint, each pointing at its card.
    fn catalog(&self, base: &str) -> Value {
        let publisher = base
            .split("://")
            .nth(1)
            .unwrap_or(base)
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let entries: Vec<Value> = self
            .endpoints()
            .iter()
            .map(|e| {
                let slug = e.trim_matches('/').replace('/', ".");
                json!({
                    "identifier": format!("urn:air:{publisher}:mcp:{slug}"),
                    "type": CARD_MEDIA_TYPE,
                    "url": format!("{base}{e}{CARD_SUFFIX}"),
                })
            })
            .collect();
        json!({"specVersion": CATALOG_SPEC_VERSION, "entries": entries})
    }
}

/// A card (`schema.ts` `ServerCard`) from `facts` and the operator's `fields` (which win), for the endpoint at
/// `url`; `None` when neither gives a name and a version.
pub(crate) fn build(
    facts: &Facts,
    fields: &CardFields,
    url: &str,
    namespace: &str,
) -> Option<Value> {
    let name = match (&fields.name, &facts.name) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) => card_name(n, namespace),
        (None, None) => return None,
    };
    let version = fields.version.clone().or_else(|| facts.version.clone())?;
    let description = fields
        .description
        .clone()
        .or_else(|| facts.description.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("MCP server {name} {version}"));
    let description: String = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
    let mut remote = json!({"type": "streamable-http", "url": url});
    if !facts.versions.is_empty() {
        remote["supportedProtocolVersions"] = json!(facts.versions);
    }
    let mut card = json!({
        "$schema": CARD_SCHEMA,
        "name": name,
        "version": version,
        "description": description,
        "remotes": [remote],
    });
    let title = fields.title.clone().or_else(|| facts.title.clone());
    if let Some(title) = title.filter(|t| !t.is_empty()) {
        card["title"] = json!(title
            .chars()
            .take(MAX_DESCRIPTION_CHARS)
            .collect::<String>());
    }
    if let Some(site) = fields
        .website_url
        .clone()
        .or_else(|| facts.website_url.clone())
    {
        card["websiteUrl"] = json!(site);
    }
    Some(card)
}

/// The namespace of derived card names: the public host in reverse DNS (`mcp.example.com` →
/// `com.example.mcp`) when the operator set one, else [`FALLBACK_NAMESPACE`].
fn namespace(base: &str, public: bool) -> String {
    let host = base.split("://").nth(1).unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if !public || host.is_empty() || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return FALLBACK_NAMESPACE.to_owned();
    }
    host.rsplit('.').collect::<Vec<_>>().join(".")
}

/// The extension's CORS headers (§CORS Requirements), exactly as it lists them.
const CORS: [(header::HeaderName, &str); 4] = [
    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    (header::ACCESS_CONTROL_ALLOW_METHODS, "GET"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, If-None-Match",
    ),
    (header::ACCESS_CONTROL_EXPOSE_HEADERS, "ETag"),
];

/// Adds [`CORS`], on every answer of these routes.
fn cors(headers: &mut HeaderMap) {
    for (name, value) in CORS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn preflight() -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    cors(resp.headers_mut());
    resp
}

fn not_yet() -> Response<Body> {
    let mut resp = body::json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": "the server's name and version are not known yet (it has not answered the gateway); set card.name and card.version to serve the card regardless"}),
    );
    let h = resp.headers_mut();
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(h);
    resp
}

/// `doc` as `media`, with the caching headers (§Caching): a strong `ETag` of the body, 304 when `If-None-Match`
/// names it (RFC 9110 §13.1.2: weak comparison, `*` matches).
fn cacheable(doc: &Value, media: &'static str, req: &HeaderMap, head: bool) -> Response<Body> {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
    let matched = req
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag);
    let mut resp = if matched {
        let mut r = Response::new(body::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let len = bytes.len();
        let mut r = Response::new(body::full(if head { Vec::new() } else { bytes }));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        if head {
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    cors(h);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_fields_win_and_names_get_a_namespace() {
        let facts = Facts {
            name: Some("fixture".into()),
            version: Some("1.0".into()),
            versions: vec!["2025-11-25".into()],
            ..Facts::default()
        };
        let card = build(&facts, &CardFields::default(), "http://h/mcp", "local").unwrap();
        assert_eq!(card["name"], "local/fixture");
        assert_eq!(card["$schema"], CARD_SCHEMA);
        assert_eq!(
            card["remotes"][0]["supportedProtocolVersions"][0],
            "2025-11-25"
        );
        let fields = CardFields {
            name: Some("com.example/weather".into()),
            description: Some("Forecasts.".into()),
            ..CardFields::default()
        };
        let card = build(&facts, &fields, "http://h/mcp", "local").unwrap();
        assert_eq!(card["name"], "com.example/weather");
        assert_eq!(card["description"], "Forecasts.");
        assert_eq!(card["version"], "1.0");
        assert!(build(&Facts::default(), &CardFields::default(), "u", "local").is_none());
    }

    #[test]
    fn namespaces_reverse_the_public_host() {
        assert_eq!(
            namespace("https://mcp.example.com", true),
            "com.example.mcp"
        );
        assert_eq!(namespace("http://127.0.0.1:8080", true), "local");
        assert_eq!(namespace("http://mcp.example.com", false), "local");
    }
}
