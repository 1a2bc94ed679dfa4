//! MCP Server Cards and AI Catalogs: what a server offers, before anyone connects (issue 16 §Discovery). The shapes
//! follow the experimental extension `modelcontextprotocol/experimental-ext-server-card` (read at commit 8924e08,
//! not part of the 2026-07-28 specification): `schema.ts` (the card: `$schema`, `name`, `version`, `description`,
//! optional `title`, `websiteUrl`, `repository`, `icons`, `remotes[]`, `_meta`) and `docs/discovery.md`
//! (§AI Catalog, §Hosted Server Card Location, §Consistency with Runtime Behavior, §CORS Requirements, §Caching).
//!
//! One home for both sides: the gateway builds the cards it serves with these constants and [`card_name`];
//! `lifeline check` fetches a card with [`fetch`] and compares it with its probe ([`check`]); `lifeline scan`
//! reads a domain's catalog ([`catalog_entries`]) and the endpoints of its cards ([`card_endpoints`]). Fetches go
//! through the prober's own HTTP client without any credential (cards and catalogs are public by design:
//! §Security Considerations), bounded by the probe's timeouts and [`MAX_DOCUMENT_BYTES`].
//!
//! Cards intentionally list no tools, prompts or resources (`schema.ts`: "They do not enumerate primitives"), so
//! the comparison covers identity and protocol versions only.

use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::ctx::Ctx;
use super::http::{read_body, HttpClient};
use super::{Failure, Phase, ProbeOptions, ProbeReport};
use crate::verdict::Reason;

/// The card's media type (`docs/discovery.md` §MCP Server Cards), sent as `Accept` and answered as
/// `Content-Type`.
pub const CARD_MEDIA_TYPE: &str = "application/mcp-server-card+json";
/// The AI Catalog's media type (§Well-Known URI).
pub const CATALOG_MEDIA_TYPE: &str = "application/ai-catalog+json";
/// The one `$schema` a card may carry (`schema.ts` `ServerCard.$schema`).
pub const CARD_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json";
/// The catalog's well-known path (§Well-Known URI).
pub const CATALOG_PATH: &str = "/.well-known/ai-catalog.json";
/// The catalog's `specVersion` in the extension's examples.
pub const CATALOG_SPEC_VERSION: &str = "1.0";
/// The reserved card location, appended to the Streamable HTTP URL (§Hosted Server Card Location).
pub const CARD_SUFFIX: &str = "/server-card";
/// The caching the extension asks of card hosts (§Caching).
pub const CACHE_CONTROL: &str = "public, max-age=3600";
/// Largest card or catalog read: 256 KiB (larger ones are refused, never buffered whole).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Longest `description` (`schema.ts`: `@maxLength 100`).
pub const MAX_DESCRIPTION_CHARS: usize = 100;

/// The card URL of a Streamable HTTP endpoint: its path plus `/server-card` (a trailing `/` is not doubled), no
/// query, fragment or credentials (§Hosted Server Card Location: "appended to the server's streamable-HTTP URL";
/// a card is public, and the URL is printed).
pub fn card_url(mcp_url: &Url) -> Url {
    let mut url = mcp_url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let path = format!("{}{CARD_SUFFIX}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Whether `name` is a valid card name: `namespace/name`, 3 to 200 characters (`schema.ts` `ServerCard.name`:
/// `^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$`).
pub fn valid_name(name: &str) -> bool {
    let Some((ns, rest)) = name.split_once('/') else {
        return false;
    };
    (3..=200).contains(&name.len())
        && !ns.is_empty()
        && !rest.is_empty()
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A card name for a server whose runtime name is `server_name`: the name itself when it is already valid, else
/// `namespace/` plus the name with every character outside `[a-zA-Z0-9._-]` replaced by `-` (the card demands a
/// reverse-DNS namespace that `serverInfo.name` rarely has). [`check`] accepts either form as agreeing.
pub fn card_name(server_name: &str, namespace: &str) -> String {
    if valid_name(server_name) {
        return server_name.to_owned();
    }
    let tail: String = server_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(150)
        .collect();
    let tail = if tail.is_empty() {
        "server".to_owned()
    } else {
        tail
    };
    format!("{namespace}/{tail}")
}

/// A fetched card or catalog.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The HTTP status.
    pub status: u16,
    /// The body, when it is a JSON object (else `None`).
    pub body: Option<Value>,
    /// `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// `Access-Control-Allow-Origin`, as sent.
    pub allow_origin: Option<String>,
    /// `Cache-Control`, as sent.
    pub cache_control: Option<String>,
    /// `ETag`, as sent.
    pub etag: Option<String>,
}

/// GETs `url` with `Accept: accept` and none of the probe's credentials, bounded by `opts.timeouts` and
/// [`MAX_DOCUMENT_BYTES`]; no redirect is followed.
///
/// Errors: the probe's [`Failure`] (`dns_failed`, `connect_refused`, `timeout`, `protocol_error` for a body over
/// the bound, ...). A non-2xx status is not an error: [`Fetched::status`] says it.
pub async fn fetch(url: &Url, accept: &str, opts: &ProbeOptions) -> Result<Fetched, Failure> {
    let mut ctx = Ctx::new(opts);
    let mut client = HttpClient::anonymous(url.clone(), &ctx)?;
    let resp = client
        .send_once(&mut ctx, Phase::Discover, &|c: &HttpClient| {
            c.request(
                http::Method::GET,
                url,
                &[("accept", accept.to_owned())],
                bytes::Bytes::new(),
            )
        })
        .await?;
    let header = |name: http::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut out = Fetched {
        status: resp.status().as_u16(),
        body: None,
        content_type: header(http::header::CONTENT_TYPE),
        allow_origin: header(http::header::ACCESS_CONTROL_ALLOW_ORIGIN),
        cache_control: header(http::header::CACHE_CONTROL),
        etag: header(http::header::ETAG),
    };
    if resp.status().is_success() {
        let body = read_body(&ctx, Phase::Discover, resp.into_body(), MAX_DOCUMENT_BYTES).await?;
        out.body = serde_json::from_slice::<Value>(&body)
            .ok()
            .filter(Value::is_object);
    }
    Ok(out)
}

/// Where a catalog entry's card is.
#[derive(Debug, Clone, PartialEq)]
pub enum CardRef {
    /// `url`: fetch it (relative URLs resolve against the catalog's).
    Url(Url),
    /// `data`: the card inline.
    Data(Value),
}

/// One MCP Server Card entry of an AI Catalog (§Server Card Entries).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// `identifier` (e.g. `urn:air:example.com:mcp:weather`).
    pub identifier: String,
    /// The card.
    pub card: CardRef,
}

/// The MCP Server Card entries of the AI Catalog `doc` fetched from `base` (§Server Card Entries: `type` is
/// [`CARD_MEDIA_TYPE`]; exactly one of `url` and `data`). Entries of other types are skipped, as a client does
/// (§Client Discovery Flow 2); malformed MCP entries are skipped too, at most `limit` entries are returned.
///
/// Errors: a document without an `entries` array (not a valid AI Catalog), as a sentence.
pub fn catalog_entries(doc: &Value, base: &Url, limit: usize) -> Result<Vec<CatalogEntry>, String> {
    let entries = doc
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| "not an AI Catalog: no \"entries\" array".to_owned())?;
    let mut out = Vec::new();
    for e in entries {
        if out.len() >= limit {
            break;
        }
        if e.get("type").and_then(Value::as_str) != Some(CARD_MEDIA_TYPE) {
            continue;
        }
        let identifier = e
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let card = match (e.get("url").and_then(Value::as_str), e.get("data")) {
            (Some(u), None) => match base.join(u) {
                Ok(url) => CardRef::Url(url),
                Err(_) => continue,
            },
            (None, Some(d)) if d.is_object() => CardRef::Data(d.clone()),
            _ => continue,
        };
        out.push(CatalogEntry { identifier, card });
    }
    Ok(out)
}

/// The connectable endpoints of a card: each `remotes[]` entry of type `streamable-http` or `sse` whose `url` is
/// an `http(s)` URL without `{template}` variables (`schema.ts` `Remote`; a templated URL needs values only its
/// user has).
pub fn card_endpoints(card: &Value) -> Vec<Url> {
    card.get("remotes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["type"].as_str(), Some("streamable-http" | "sse")))
        .filter_map(|r| r["url"].as_str())
        .filter(|u| !u.contains('{'))
        .filter_map(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .collect()
}

/// A card field that contradicts the live server (§Consistency with Runtime Behavior).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// `name`, `version` or `supportedProtocolVersions`.
    pub field: &'static str,
    /// What the card says.
    pub card: String,
    /// What the server said.
    pub server: String,
}

/// What `lifeline check` found about a target's card. Never changes the verdict (the card is advisory:
/// §Consistency with Runtime Behavior).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardCheck {
    /// The card URL asked ([`card_url`]).
    pub url: String,
    /// True when a JSON card was served (2xx, a JSON object).
    pub present: bool,
    /// The HTTP status, when an answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Card fields that contradict the server's answers (empty when it agrees or is absent).
    pub disagreements: Vec<Disagreement>,
    /// What the card or its serving misses from the extension: a missing required field, an invalid `name`, a
    /// wrong `$schema`, no CORS header, another media type.
    pub problems: Vec<String>,
}

impl CardCheck {
    /// True when a card is present and nothing disagrees.
    pub fn agrees(&self) -> bool {
        self.present && self.disagreements.is_empty()
    }
}

/// Fetches the card of the Streamable HTTP endpoint `mcp_url` and compares it with `report`, the probe of that
/// endpoint (`opts` bound the fetch). Never fails: an unreachable card is [`CardCheck::error`].
pub async fn check(mcp_url: &Url, report: &ProbeReport, opts: &ProbeOptions) -> CardCheck {
    let url = card_url(mcp_url);
    let mut out = CardCheck {
        url: url.to_string(),
        present: false,
        status: None,
        error: None,
        disagreements: Vec::new(),
        problems: Vec::new(),
    };
    let fetched = match fetch(&url, CARD_MEDIA_TYPE, opts).await {
        Ok(f) => f,
        Err(f) => {
            out.error = Some(f.message);
            return out;
        }
    };
    out.status = Some(fetched.status);
    let Some(card) = fetched.body.as_ref() else {
        return out;
    };
    out.present = true;
    out.problems = problems(card, &fetched);
    out.disagreements = compare(card, mcp_url, report);
    out
}

/// What a served card misses from the extension (`schema.ts` required fields and patterns; §CORS Requirements;
/// the card media type).
pub fn problems(card: &Value, fetched: &Fetched) -> Vec<String> {
    let mut out = Vec::new();
    if card.get("$schema").and_then(Value::as_str) != Some(CARD_SCHEMA) {
        out.push(format!("$schema is not {CARD_SCHEMA}"));
    }
    match card.get("name").and_then(Value::as_str) {
        None => out.push("name is missing".to_owned()),
        Some(n) if !valid_name(n) => out.push(format!("name {n:?} is not namespace/name")),
        Some(_) => {}
    }
    if card.get("version").and_then(Value::as_str).is_none() {
        out.push("version is missing".to_owned());
    }
    match card.get("description").and_then(Value::as_str) {
        None => out.push("description is missing".to_owned()),
        Some(d) if d.is_empty() || d.chars().count() > MAX_DESCRIPTION_CHARS => out.push(format!(
            "description must be 1 to {MAX_DESCRIPTION_CHARS} characters"
        )),
        Some(_) => {}
    }
    if fetched.allow_origin.as_deref() != Some("*") {
        out.push("no Access-Control-Allow-Origin: * (browser clients cannot read it)".to_owned());
    }
    let media = fetched
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if media != Some(CARD_MEDIA_TYPE) && media != Some("application/json") {
        out.push(format!(
            "served as {}, not {CARD_MEDIA_TYPE}",
            media.unwrap_or("(no Content-Type)")
        ));
    }
    out
}

/// The card fields that contradict `report` (§Consistency with Runtime Behavior): `name` (equal to the server's
/// `serverInfo.name`, or `namespace/` plus it: see [`card_name`]), `version`, and the protocol version the server
/// spoke, which must be among the `supportedProtocolVersions` of the card's remote for `mcp_url` (or of its only
/// remote) when the card lists them.
pub fn compare(card: &Value, mcp_url: &Url, report: &ProbeReport) -> Vec<Disagreement> {
    let mut out = Vec::new();
    let info = report.server_info.as_ref();
    if let (Some(card_name), Some(server)) = (
        card.get("name").and_then(Value::as_str),
        info.and_then(|i| i.name.as_deref()),
    ) {
        let tail = card_name.split_once('/').map_or(card_name, |(_, t)| t);
        if card_name != server && tail != sanitized_tail(server) {
            out.push(Disagreement {
                field: "name",
                card: card_name.to_owned(),
                server: server.to_owned(),
            });
        }
    }
    if let (Some(card_version), Some(server)) = (
        card.get("version").and_then(Value::as_str),
        info.and_then(|i| i.version.as_deref()),
    ) {
        if card_version != server {
            out.push(Disagreement {
                field: "version",
                card: card_version.to_owned(),
                server: server.to_owned(),
            });
        }
    }
    let remotes: Vec<&Value> = card
        .get("remotes")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let same = |r: &&Value| {
        r["url"]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .is_some_and(|u| u.path().trim_end_matches('/') == mcp_url.path().trim_end_matches('/'))
    };
    let remote = remotes
        .iter()
        .copied()
        .find(same)
        .or_else(|| (remotes.len() == 1).then(|| remotes[0]));
    if let (Some(listed), Some(spoken)) = (
        remote.and_then(|r| r["supportedProtocolVersions"].as_array()),
        report.protocol_version.as_deref(),
    ) {
        if !listed.iter().any(|v| v.as_str() == Some(spoken)) {
            let card: Vec<&str> = listed.iter().filter_map(Value::as_str).collect();
            out.push(Disagreement {
                field: "supportedProtocolVersions",
                card: card.join(", "),
                server: spoken.to_owned(),
            });
        }
    }
    out
}

/// The part after `/` of the name [`card_name`] makes of `server`.
fn sanitized_tail(server: &str) -> String {
    let full = card_name(server, "x");
    full.split_once('/')
        .map_or_else(|| full.clone(), |(_, t)| t.to_owned())
}

/// A failure of a catalog fetch as the census reports it: `http_status` for a non-2xx answer, `not_mcp` for a
/// body that is no AI Catalog.
pub fn catalog_failure(url: &Url, fetched: &Fetched) -> Option<Failure> {
    if !(200..300).contains(&fetched.status) {
        let mut f = Failure::new(
            Reason::HttpStatus,
            format!("no AI Catalog at {url}: HTTP {}", fetched.status),
        )
        .in_phase(Phase::Discover);
        f.http_status = Some(fetched.status);
        return Some(f);
    }
    if fetched
        .body
        .as_ref()
        .and_then(|b| b.get("entries"))
        .is_none()
    {
        return Some(
            Failure::new(
                Reason::NotMcp,
                format!("{url} is not an AI Catalog (no JSON object with \"entries\")"),
            )
            .in_phase(Phase::Discover),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ServerInfo;
    use serde_json::json;

    #[test]
    fn card_url_appends_the_reserved_suffix() {
        for (mcp, card) in [
            ("https://h.example/mcp", "https://h.example/mcp/server-card"),
            (
                "https://h.example/mcp/",
                "https://h.example/mcp/server-card",
            ),
            ("https://h.example/", "https://h.example/server-card"),
            (
                "http://127.0.0.1:9/servers/a/mcp?x=1",
                "http://127.0.0.1:9/servers/a/mcp/server-card",
            ),
        ] {
            assert_eq!(card_url(&Url::parse(mcp).unwrap()).as_str(), card);
        }
    }

    #[test]
    fn names_follow_the_schema_pattern() {
        assert!(valid_name("com.example/weather"));
        assert!(valid_name("mcp-servers/everything"));
        assert!(!valid_name("everything"));
        assert!(!valid_name("a/b/c"));
        assert!(!valid_name("a b/c"));
        assert_eq!(
            card_name("mcp-servers/everything", "local"),
            "mcp-servers/everything"
        );
        assert_eq!(card_name("My Server", "local"), "local/My-Server");
        assert_eq!(card_name("", "local"), "local/server");
    }

    #[test]
    fn catalog_entries_take_only_mcp_cards() {
        let base = Url::parse("https://acme.example/.well-known/ai-catalog.json").unwrap();
        let doc = json!({"specVersion": "1.0", "entries": [
            {"identifier": "a", "type": CARD_MEDIA_TYPE, "url": "/a/mcp/server-card"},
            {"identifier": "b", "type": "application/a2a-agent-card+json", "url": "/agent"},
            {"identifier": "c", "type": CARD_MEDIA_TYPE, "data": {"name": "x/y"}},
            {"identifier": "d", "type": CARD_MEDIA_TYPE, "url": "/d", "data": {}},
        ]});
        let entries = catalog_entries(&doc, &base, 10).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].card,
            CardRef::Url(Url::parse("https://acme.example/a/mcp/server-card").unwrap())
        );
        assert!(matches!(entries[1].card, CardRef::Data(_)));
        assert_eq!(catalog_entries(&doc, &base, 1).unwrap().len(), 1);
        assert!(catalog_entries(&json!({"x": 1}), &base, 10).is_err());
    }

    #[test]
    fn endpoints_skip_templates_and_other_transports() {
        let card = json!({"remotes": [
            {"type": "streamable-http", "url": "https://a.example/mcp"},
            {"type": "streamable-http", "url": "https://{tenant}.example/mcp"},
            {"type": "stdio", "url": "https://b.example/mcp"},
            {"type": "sse", "url": "https://c.example/sse"},
        ]});
        let urls: Vec<String> = card_endpoints(&card).iter().map(Url::to_string).collect();
        assert_eq!(urls, ["https://a.example/mcp", "https://c.example/sse"]);
    }

    #[test]
    fn compare_names_versions_and_protocol_versions() {
        let mut report = ProbeReport::failed(
            "u".into(),
            Failure::new(Reason::Timeout, "x"),
            Default::default(),
            String::new(),
        );
        report.server_info = Some(ServerInfo {
            name: Some("fixture".into()),
            version: Some("1.2.0".into()),
        });
        report.protocol_version = Some("2025-11-25".into());
        let url = Url::parse("http://127.0.0.1:1/mcp").unwrap();
        let agreeing = json!({"name": "local/fixture", "version": "1.2.0",
            "remotes": [{"type": "streamable-http", "url": "http://x/mcp", "supportedProtocolVersions": ["2025-11-25"]}]});
        assert!(compare(&agreeing, &url, &report).is_empty());
        let off = json!({"name": "local/other", "version": "1.3.0",
            "remotes": [{"type": "streamable-http", "url": "http://x/mcp", "supportedProtocolVersions": ["2026-07-28"]}]});
        let fields: Vec<&str> = compare(&off, &url, &report)
            .iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["name", "version", "supportedProtocolVersions"]);
    }
}
