//! The `auth:` block: its raw form ([`RawAuth`], file only) and its validation into [`AuthConfig`], together
//! with the `--auth-*` flags of [`RawConfig`] for the common cases (each wins over the same setting in the
//! block). Every problem is reported with its path (`auth.jwt[0].issuer: …`, `auth.api_keys_file:3: …`).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use lifeline_core::config::{parse_duration, setting_lines};
use lifeline_core::secret::Secret;
use lifeline_core::FieldErrors;
use serde::{Deserialize, Serialize};
use url::Url;

use super::validate::ReadFile;
use super::*;

/// The `auth:` block as written in a config file (`snake_case` keys, durations as strings with units). Every
/// field is optional; see [`AuthConfig`] for the meaning and the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// The canonical resource URI, e.g. `https://mcp.example.com/mcp`.
    pub resource: Option<String>,
    /// Trusted JWT issuers.
    pub jwt: Option<Vec<RawJwtIssuer>>,
    /// RFC 7662 introspection endpoints.
    pub introspection: Option<Vec<RawIntrospection>>,
    /// A file of API keys, `name sha256:HEX [scope ...]` a line (`#` comments allowed).
    pub api_keys_file: Option<PathBuf>,
    /// How often `api_keys_file` is re-read (`5s`).
    pub api_keys_reload_interval: Option<String>,
    /// Scopes advertised in the metadata and the 401 challenge.
    pub scopes_supported: Option<Vec<String>>,
    /// Per-tool rules, first match wins.
    pub tools: Option<Vec<RawToolRule>>,
    /// Per-principal rate limit.
    pub rate_limit: Option<RawRateLimit>,
    /// Send `X-Lifeline-Subject` / `X-Lifeline-Scopes` upstream.
    pub forward_identity: Option<bool>,
    /// Skew allowed on `exp` / `nbf` (`30s`).
    pub clock_skew: Option<String>,
    /// Minimum time between JWKS refetches caused by an unknown `kid` (`10s`).
    pub jwks_refetch_interval: Option<String>,
    /// Bound on the reuse of an introspection answer (`60s`).
    pub introspection_cache_ttl: Option<String>,
    /// Bound on one call to an authorization server (`5s`).
    pub fetch_timeout: Option<String>,
}

/// `auth.jwt[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtIssuer {
    /// The issuer identifier, exactly as in the tokens' `iss`.
    pub issuer: Option<String>,
    /// The JWKS URL; default: discovered from the issuer.
    pub jwks_url: Option<String>,
    /// Accepted audiences; default `[resource]`.
    pub audiences: Option<Vec<String>>,
}

/// `auth.introspection[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    /// The introspection endpoint.
    pub url: Option<String>,
    /// The gateway's client id.
    pub client_id: Option<String>,
    /// A file holding the client secret (surrounding blanks and the final newline ignored).
    pub client_secret_file: Option<PathBuf>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub auth_method: Option<String>,
    /// Accepted audiences; default `[resource]`.
    pub audiences: Option<Vec<String>>,
    /// The issuer behind the endpoint (listed in the metadata; checked against `iss` when present).
    pub issuer: Option<String>,
}

/// `auth.tools[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolRule {
    /// The tool name pattern (`*` wildcards).
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    /// Scopes a call needs.
    pub require_scopes: Option<Vec<String>>,
}

/// `auth.rate_limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `N/s`, `N/m`, `N/h` or `N/<duration>`.
    pub per_principal: Option<String>,
    /// Bucket size; default the rate's count.
    pub burst: Option<u32>,
    /// One bucket per principal and tool.
    pub per_tool: Option<bool>,
}

/// The `--auth-*` flags (set on [`RawConfig`]); they win over the same settings of the `auth:` block.
pub(super) struct AuthFlags<'a> {
    pub(super) resource: Option<&'a str>,
    pub(super) issuers: Option<&'a [String]>,
    pub(super) api_keys_file: Option<&'a PathBuf>,
    pub(super) scopes: Option<&'a [String]>,
    pub(super) forward_identity: Option<bool>,
}

impl AuthFlags<'_> {
    fn any(&self) -> bool {
        self.resource.is_some()
            || self.issuers.is_some_and(|i| !i.is_empty())
            || self.api_keys_file.is_some()
            || self.scopes.is_some_and(|s| !s.is_empty())
            || self.forward_identity.is_some()
    }
}

/// Most lines an API key file may hold.
pub(crate) const MAX_API_KEYS: usize = 10_000;
/// Largest API key file read (and secret file): 1 MiB.
pub(crate) const MAX_AUTH_FILE_BYTES: usize = 1024 * 1024;

/// Validates the `auth:` block and the `--auth-*` flags into an [`AuthConfig`]; `None` when neither is set.
pub(super) fn validate(
    block: Option<&RawAuth>,
    flags: &AuthFlags<'_>,
    e: &mut FieldErrors,
    read_file: ReadFile<'_>,
) -> Option<AuthConfig> {
    if block.is_none() && !flags.any() {
        return None;
    }
    let empty = RawAuth::default();
    let raw = block.unwrap_or(&empty);

    let resource = match flags.resource.or(raw.resource.as_deref()) {
        Some(r) => {
            let path = if flags.resource.is_some() {
                "auth_resource"
            } else {
                "auth.resource"
            };
            e.check(path, parse_resource(r))
        }
        None => None,
    };
    let default_audiences = |e: &mut FieldErrors, path: String, given: &Option<Vec<String>>| match (
        given, &resource,
    ) {
        (Some(list), _) if !list.is_empty() => list.iter().map(|a| a.trim().to_owned()).collect(),
        (Some(_), _) => {
            e.push(path, "must name at least one audience");
            Vec::new()
        }
        (None, Some(r)) => vec![r.clone()],
        (None, None) => {
            e.push(
                    path,
                    "required when auth.resource is not set (a token must be checked against a fixed audience, never one taken from the request)",
                );
            Vec::new()
        }
    };

    let mut jwt = Vec::new();
    let flag_issuers: Vec<RawJwtIssuer> = flags
        .issuers
        .unwrap_or_default()
        .iter()
        .map(|i| RawJwtIssuer {
            issuer: Some(i.clone()),
            ..RawJwtIssuer::default()
        })
        .collect();
    let (issuers, prefix) = if flag_issuers.is_empty() {
        (raw.jwt.clone().unwrap_or_default(), "auth.jwt")
    } else {
        (flag_issuers, "auth_issuer")
    };
    for (i, j) in issuers.iter().enumerate() {
        let at = |field: &str| format!("{prefix}[{i}].{field}");
        let issuer = match j.issuer.as_deref() {
            Some(iss) => e.check(&at("issuer"), parse_issuer(iss)),
            None => {
                e.push(at("issuer"), "required");
                None
            }
        };
        let jwks_url = j
            .jwks_url
            .as_deref()
            .and_then(|u| e.check(&at("jwks_url"), parse_fetch_url(u)));
        let audiences = default_audiences(e, at("audiences"), &j.audiences);
        if let Some(issuer) = issuer {
            jwt.push(JwtIssuer {
                issuer,
                jwks_url,
                audiences,
            });
        }
    }

    let mut introspection = Vec::new();
    for (i, r) in raw.introspection.iter().flatten().enumerate() {
        let at = |field: &str| format!("auth.introspection[{i}].{field}");
        let url = match r.url.as_deref() {
            Some(u) => e.check(&at("url"), parse_fetch_url(u)),
            None => {
                e.push(at("url"), "required");
                None
            }
        };
        let client_id = match r.client_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Some(id.to_owned()),
            _ => {
                e.push(
                    at("client_id"),
                    "required (RFC 7662 §2.1: the endpoint authenticates its callers)",
                );
                None
            }
        };
        let client_secret = match &r.client_secret_file {
            Some(file) => e
                .check(&at("client_secret_file"), read_secret(read_file, file))
                .map(Secret::new),
            None => {
                e.push(at("client_secret_file"), "required");
                None
            }
        };
        let auth_method = match r.auth_method.as_deref().unwrap_or("client_secret_basic") {
            "client_secret_basic" => ClientAuthMethod::ClientSecretBasic,
            "client_secret_post" => ClientAuthMethod::ClientSecretPost,
            other => {
                e.push(
                    at("auth_method"),
                    format!("{other:?} is not one of client_secret_basic, client_secret_post"),
                );
                ClientAuthMethod::ClientSecretBasic
            }
        };
        let audiences = default_audiences(e, at("audiences"), &r.audiences);
        let issuer = r
            .issuer
            .as_deref()
            .and_then(|iss| e.check(&at("issuer"), parse_issuer(iss)));
        if let (Some(url), Some(client_id), Some(client_secret)) = (url, client_id, client_secret) {
            introspection.push(IntrospectionEndpoint {
                url,
                client_id,
                client_secret,
                auth_method,
                audiences,
                issuer,
            });
        }
    }

    let mut duration =
        |field: &str, raw: &Option<String>, default: Duration, min: Duration| match raw
            .as_deref()
            .map(parse_duration)
        {
            None => default,
            Some(Err(m)) => {
                e.push(format!("auth.{field}"), m);
                default
            }
            Some(Ok(d)) if d < min => {
                e.push(
                    format!("auth.{field}"),
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                default
            }
            Some(Ok(d)) => d,
        };
    let clock_skew = duration(
        "clock_skew",
        &raw.clock_skew,
        DEFAULT_AUTH_CLOCK_SKEW,
        Duration::ZERO,
    );
    let jwks_refetch_interval = duration(
        "jwks_refetch_interval",
        &raw.jwks_refetch_interval,
        DEFAULT_JWKS_REFETCH_INTERVAL,
        Duration::from_millis(100),
    );
    let introspection_cache_ttl = duration(
        "introspection_cache_ttl",
        &raw.introspection_cache_ttl,
        DEFAULT_INTROSPECTION_CACHE_TTL,
        Duration::ZERO,
    );
    let fetch_timeout = duration(
        "fetch_timeout",
        &raw.fetch_timeout,
        DEFAULT_AUTH_FETCH_TIMEOUT,
        Duration::from_millis(100),
    );
    let reload_interval = duration(
        "api_keys_reload_interval",
        &raw.api_keys_reload_interval,
        DEFAULT_API_KEYS_RELOAD_INTERVAL,
        Duration::from_millis(100),
    );
    if clock_skew > Duration::from_secs(300) {
        e.push("auth.clock_skew", "must be at most 5m");
    }

    let api_keys = match (flags.api_keys_file, &raw.api_keys_file) {
        (Some(file), _) => Some(("auth_api_keys_file", file)),
        (None, Some(file)) => Some(("auth.api_keys_file", file)),
        (None, None) => None,
    }
    .and_then(|(path, file)| {
        let text = e.check(path, read_bounded(read_file, file))?;
        let (keys, problems) = parse_api_keys(&text);
        for (line, message) in problems {
            e.push(format!("{path}:{line}"), message);
        }
        Some(ApiKeysConfig {
            file: file.clone(),
            keys,
            reload_interval,
        })
    });

    let (scopes, scopes_path) = match flags.scopes {
        Some(s) if !s.is_empty() => (s.to_vec(), "auth_scopes_supported"),
        _ => (
            raw.scopes_supported.clone().unwrap_or_default(),
            "auth.scopes_supported",
        ),
    };
    let mut scopes_supported = Vec::new();
    for (i, s) in scopes.iter().enumerate() {
        if let Some(s) = e.check(&format!("{scopes_path}[{i}]"), parse_scope(s)) {
            if s == "offline_access" {
                // 2026-07-28 `basic/authorization` §Refresh Tokens: a resource SHOULD NOT advertise it.
                e.push(
                    format!("{scopes_path}[{i}]"),
                    "offline_access is not a resource's scope (2026-07-28 authorization §Refresh Tokens)",
                );
            }
            scopes_supported.push(s);
        }
    }

    let mut tools = Vec::new();
    for (i, t) in raw.tools.iter().flatten().enumerate() {
        let pattern = match t.pattern.as_deref() {
            Some(p) => e.check(&format!("auth.tools[{i}].match"), parse_tool_pattern(p)),
            None => {
                e.push(format!("auth.tools[{i}].match"), "required");
                None
            }
        };
        let mut require_scopes = Vec::new();
        for (j, s) in t.require_scopes.iter().flatten().enumerate() {
            require_scopes.extend(e.check(
                &format!("auth.tools[{i}].require_scopes[{j}]"),
                parse_scope(s),
            ));
        }
        if let Some(pattern) = pattern {
            tools.push(ToolRule {
                pattern,
                require_scopes,
            });
        }
    }

    let rate_limit = raw.rate_limit.as_ref().and_then(|r| {
        let rate = match r.per_principal.as_deref() {
            Some(p) => e.check("auth.rate_limit.per_principal", parse_rate(p)),
            None => {
                e.push("auth.rate_limit.per_principal", "required");
                None
            }
        }?;
        let burst = r.burst.unwrap_or(rate.count.get());
        if burst == 0 {
            e.push("auth.rate_limit.burst", "must be at least 1");
        }
        Some(RateLimit {
            per_principal: rate,
            burst: burst.max(1),
            per_tool: r.per_tool.unwrap_or(false),
        })
    });

    if jwt.is_empty()
        && introspection.is_empty()
        && api_keys.is_none()
        && raw.jwt.as_ref().is_none_or(Vec::is_empty)
        && raw.introspection.as_ref().is_none_or(Vec::is_empty)
        && raw.api_keys_file.is_none()
        && flags.api_keys_file.is_none()
    {
        e.push(
            "auth",
            "names no way to authenticate: set jwt, introspection or api_keys_file",
        );
    }

    Some(AuthConfig {
        resource,
        jwt,
        introspection,
        api_keys,
        scopes_supported,
        tools,
        rate_limit,
        forward_identity: flags
            .forward_identity
            .or(raw.forward_identity)
            .unwrap_or(false),
        clock_skew,
        jwks_refetch_interval,
        introspection_cache_ttl,
        fetch_timeout,
    })
}

/// Parses an API key file: every well-formed line, and `(line number, problem)` for the others. Used at
/// start-up (problems are config errors) and on reload (problems keep the previous keys).
pub(crate) fn parse_api_keys(text: &str) -> (Vec<ApiKey>, Vec<(usize, String)>) {
    let mut keys: Vec<ApiKey> = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in setting_lines(text) {
        if keys.len() >= MAX_API_KEYS {
            problems.push((n, format!("more than {MAX_API_KEYS} keys")));
            break;
        }
        match parse_api_key_line(line) {
            Ok(key) if keys.iter().any(|k| k.sha256 == key.sha256) => {
                problems.push((n, "the same key hash appears twice".to_owned()));
            }
            Ok(key) => keys.push(key),
            Err(m) => problems.push((n, m)),
        }
    }
    (keys, problems)
}

/// `name sha256:HEX [scope ...]`.
fn parse_api_key_line(line: &str) -> Result<ApiKey, String> {
    let mut words = line.split_whitespace();
    let (Some(name), Some(hash)) = (words.next(), words.next()) else {
        return Err("must be 'name sha256:HEX [scope ...]'".to_owned());
    };
    let hex_digits = hash
        .strip_prefix("sha256:")
        .ok_or("the key must be given as sha256:HEX (the key itself is never stored)")?;
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut sha256)
        .map_err(|_| "sha256: must be followed by 64 hex digits".to_owned())?;
    let scopes = words.map(parse_scope).collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKey {
        name: name.to_owned(),
        sha256,
        scopes,
    })
}

/// An absolute `http(s)` URL without a fragment, kept exactly as written (trimmed): it is compared with `aud`.
fn parse_resource(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be an absolute http(s) URL"));
    }
    if url.fragment().is_some() {
        // RFC 8707 §2: the resource indicator "MUST NOT include a fragment component".
        return Err("must not have a fragment (RFC 8707 §2)".to_owned());
    }
    Ok(raw.to_owned())
}

/// An issuer identifier (RFC 8414 §2: a URL with no query or fragment), kept exactly as written.
fn parse_issuer(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment (RFC 8414 §2)".to_owned());
    }
    Ok(raw.to_owned())
}

fn parse_fetch_url(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be an http(s) URL"));
    }
    Ok(url)
}

/// A scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`, at least one).
pub(crate) fn parse_scope(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(format!("{raw:?} is not a scope (RFC 6749 §3.3)"))
    }
}

/// Tool-name characters (2026-07-28 `server/tools` §Tool Names: `A-Z a-z 0-9 _ - .`, plus `/` seen in the wild)
/// and `*`.
fn parse_tool_pattern(raw: &str) -> Result<ToolPattern, String> {
    let ok = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*'));
    if ok {
        Ok(ToolPattern::new(raw))
    } else {
        Err(format!(
            "{raw:?} is not a tool name pattern (letters, digits, _ - . / and * wildcards)"
        ))
    }
}

/// `N/s`, `N/m`, `N/h`, or `N/<duration>` (`5/10s`).
fn parse_rate(raw: &str) -> Result<Rate, String> {
    let bad = || format!("{raw:?} is not a rate such as 20/s, 100/m or 5/10s");
    let (n, per) = raw.trim().split_once('/').ok_or_else(bad)?;
    let count = n
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(bad)?;
    let per = match per.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        d => parse_duration(d).map_err(|_| bad())?,
    };
    if per.is_zero() {
        return Err(bad());
    }
    Ok(Rate { count, per })
}

fn read_bounded(read_file: ReadFile<'_>, path: &std::path::Path) -> Result<String, String> {
    let text = read_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() > MAX_AUTH_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_AUTH_FILE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(text)
}

fn read_secret(read_file: ReadFile<'_>, path: &std::path::Path) -> Result<String, String> {
    let text = read_bounded(read_file, path)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_owned())
}
