//! `card:`: what the operator says in the Server Cards the gateway serves (`docs/gateway.md` §Discovery; the shapes
//! in `lifeline_mcp::probe::card`). Config file only. At the top level it holds the gateway-wide settings
//! (`enabled`, `public_url`) and the fields of the card of the MCP endpoint (the single upstream's, or the merged
//! federated endpoint's); inside a `servers:` entry, the fields of that server's card. A field set here wins
//! over what the upstream says.
//!
//! Checked here, against the extension's `schema.ts` (`modelcontextprotocol/experimental-ext-server-card`):
//! `name` (`namespace/name`, 3..=200), `version` (at most 255, no range such as `^1.2`), `title` and
//! `description` (1..=100 characters), `website_url` and `public_url` (absolute http(s) URLs; `public_url` an
//! origin, no path).

use lifeline_core::FieldErrors;
use lifeline_mcp::probe::card::{valid_name, MAX_DESCRIPTION_CHARS};
use serde::{Deserialize, Serialize};
use url::Url;

/// `card:` in a config file (top level, or in a `servers:` entry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCard {
    /// Top level only: serve the Server Cards and the AI Catalog. [default: true]
    pub enabled: Option<bool>,
    /// Top level only: the origin clients reach the gateway at, e.g. `https://mcp.example.com` (the cards'
    /// `remotes[].url` and the catalog's `url`s are built on it). [default: the request's `Host`, over http]
    pub public_url: Option<String>,
    /// The card's `name`, `namespace/name`. [default: the server's `serverInfo.name`, prefixed `local/` when it
    /// has no namespace]
    pub name: Option<String>,
    /// The card's `version`. [default: the server's `serverInfo.version`]
    pub version: Option<String>,
    /// The card's `title`. [default: the server's `serverInfo.title`, if any]
    pub title: Option<String>,
    /// The card's `description`, 1 to 100 characters. [default: the server's `serverInfo.description`, else a
    /// sentence naming the server]
    pub description: Option<String>,
    /// The card's `websiteUrl`. [default: the server's `serverInfo.websiteUrl`, if any]
    pub website_url: Option<String>,
}

/// The card fields an operator set (each wins over the upstream's answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardFields {
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `websiteUrl`.
    pub website_url: Option<String>,
}

/// The validated top-level `card:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardConfig {
    /// Serve `<mcp path>/server-card` and `/.well-known/ai-catalog.json`.
    pub enabled: bool,
    /// Whether `card.enabled` was written in the file (an explicit `true` silences the warning that cards are
    /// served ahead of `auth:`, [`crate::config::GatewayConfig::warnings`]).
    #[serde(skip)]
    pub enabled_explicitly: bool,
    /// The public origin (`scheme://host[:port]`, no trailing slash), when set.
    pub public_url: Option<String>,
    /// The MCP endpoint's card fields.
    pub fields: CardFields,
}

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig {
            enabled: true,
            enabled_explicitly: false,
            public_url: None,
            fields: CardFields::default(),
        }
    }
}

/// Checks the top-level `card:` (`None`: the defaults).
pub(crate) fn validate(raw: Option<&RawCard>, e: &mut FieldErrors) -> CardConfig {
    let Some(raw) = raw else {
        return CardConfig::default();
    };
    let public_url = raw.public_url.as_deref().and_then(|u| match origin(u) {
        Ok(o) => Some(o),
        Err(msg) => {
            e.push("card.public_url", msg);
            None
        }
    });
    CardConfig {
        enabled: raw.enabled.unwrap_or(true),
        enabled_explicitly: raw.enabled.is_some(),
        public_url,
        fields: fields(raw, "card", e),
    }
}

/// Checks a `servers[i].card` (`at` is `servers[i].card`): fields only.
pub(crate) fn validate_server(raw: Option<&RawCard>, at: &str, e: &mut FieldErrors) -> CardFields {
    let Some(raw) = raw else {
        return CardFields::default();
    };
    if raw.enabled.is_some() {
        e.push(
            format!("{at}.enabled"),
            "only at the top level (card.enabled)",
        );
    }
    if raw.public_url.is_some() {
        e.push(
            format!("{at}.public_url"),
            "only at the top level (card.public_url)",
        );
    }
    fields(raw, at, e)
}

fn fields(raw: &RawCard, at: &str, e: &mut FieldErrors) -> CardFields {
    if let Some(name) = &raw.name {
        if !valid_name(name) {
            e.push(
                format!("{at}.name"),
                "must be namespace/name (reverse DNS, e.g. com.example/weather: letters, digits, . and - before the /; letters, digits, ., _ and - after), 3 to 200 characters",
            );
        }
    }
    if let Some(v) = &raw.version {
        let range = v.starts_with(['^', '~', '>', '<', '=']) || v.contains(".x") || v.contains('*');
        if v.is_empty() || v.len() > 255 || range {
            e.push(
                format!("{at}.version"),
                "must be one version (e.g. 1.0.2), at most 255 characters, not a range",
            );
        }
    }
    for (field, value) in [("title", &raw.title), ("description", &raw.description)] {
        if let Some(v) = value {
            let n = v.chars().count();
            if n == 0 || n > MAX_DESCRIPTION_CHARS {
                e.push(
                    format!("{at}.{field}"),
                    format!("must be 1 to {MAX_DESCRIPTION_CHARS} characters"),
                );
            }
        }
    }
    if let Some(u) = &raw.website_url {
        if !Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            e.push(
                format!("{at}.website_url"),
                "must be an absolute http(s) URL",
            );
        }
    }
    CardFields {
        name: raw.name.clone(),
        version: raw.version.clone(),
        title: raw.title.clone(),
        description: raw.description.clone(),
        website_url: raw.website_url.clone(),
    }
}

/// `scheme://host[:port]` of an http(s) URL without path, query or credentials.
fn origin(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) origin, e.g. https://mcp.example.com".to_owned());
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err("must be an origin only (no path, query or credentials): the gateway adds each endpoint's path".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let raw = RawCard {
            enabled: None,
            public_url: Some("https://mcp.example.com/mcp".into()),
            name: Some("weather".into()),
            version: Some("^1.2".into()),
            title: Some(String::new()),
            description: Some("x".repeat(101)),
            website_url: Some("ftp://x".into()),
        };
        let mut e = FieldErrors::new();
        let _ = validate(Some(&raw), &mut e);
        let text = e.finish(|| ()).unwrap_err().to_string();
        for field in [
            "card.public_url",
            "card.name",
            "card.version",
            "card.title",
            "card.description",
            "card.website_url",
        ] {
            assert!(text.contains(field), "{field} missing from {text}");
        }
        let mut e = FieldErrors::new();
        let _ = validate_server(Some(&raw), "servers[0].card", &mut e);
        let text = e.finish(|| ()).unwrap_err().to_string();
        assert!(text.contains("servers[0].card.public_url"), "{text}");
    }

    #[test]
    fn a_good_card_passes() {
        let raw = RawCard {
            enabled: Some(true),
            public_url: Some("https://mcp.example.com/".into()),
            name: Some("com.example/weather".into()),
            version: Some("1.0.2".into()),
            title: Some("Weather".into()),
            description: Some("Forecasts.".into()),
            website_url: Some("https://example.com".into()),
        };
        let mut e = FieldErrors::new();
        let cfg = validate(Some(&raw), &mut e);
        assert!(e.is_empty());
        assert_eq!(cfg.public_url.as_deref(), Some("https://mcp.example.com"));
    }
}
