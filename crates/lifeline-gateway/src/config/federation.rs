//! `servers:`: the federation of named MCP servers behind one endpoint (`docs/gateway-federation.md`, issue 16).
//! Config file only (a list of maps is no flag). Each entry is an HTTP pool (`url`: one URL or a list, the
//! replicas of one server, as `upstreams:` in `docs/gateway-replicas.md`) or a stdio `command`, with its naming
//! rule (`prefix`) and health policy (`health`).
//!
//! Checked here: names (unique, `[a-z0-9-]`, 1..=32 characters: `NAME__tool` must split back unambiguously, so a
//! name never holds `__`), exactly one of `url`/`command`, the enums, the interval. Collisions between tool names
//! need the servers' answers: the gateway reports them at start (and `GET /servers`); what `--check-config` can
//! see without connecting (two `prefix: never` servers, whose names may then collide) is reported as a warning line
//! in [`FederationConfig::static_warnings`].

use std::time::Duration;

use lifeline_core::config::{parse_duration, ser};
use lifeline_core::FieldErrors;
use serde::{Deserialize, Serialize};

use super::{
    Discovery, EndpointConfig, PoolConfig, StdioConfig, StdioMode, UpstreamConfig,
    DEFAULT_BASE_EJECTION_TIME, DEFAULT_CONSECUTIVE_ERRORS, DEFAULT_DNS_INTERVAL, DEFAULT_GROUP,
    DEFAULT_HEALTH_INTERVAL, DEFAULT_MAX_EJECTION_TIME, DEFAULT_MAX_LINE_BYTES, DEFAULT_POOL_SIZE,
};

/// Most servers in `servers:`: 64.
pub const MAX_SERVERS: usize = 64;
/// Longest server name: 32 characters.
pub const MAX_SERVER_NAME: usize = 32;
/// The separator between a server's name and its tool or prompt name: `NAME__tool`.
pub const PREFIX_SEPARATOR: &str = "__";
/// Default interval of the federation's health check of each server (a `ping` on the gateway's own session with
/// it, or a new `initialize` when it has none): 5 s.
pub const DEFAULT_SERVER_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// One entry of `servers:` in a config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// The server's name: lowercase letters, digits and `-`, 1 to 32; unique. It names `/servers/NAME/mcp` and
    /// the `NAME__` prefix.
    pub name: String,
    /// Its Streamable HTTP endpoint (one URL, or a list of replicas served as one pool). Exclusive with `command`.
    #[serde(default, deserialize_with = "super::raw::one_or_many")]
    pub url: Option<Vec<String>>,
    /// A stdio server to run (program and arguments), one child per upstream session. Exclusive with `url`.
    pub command: Option<Vec<String>>,
    /// Environment of the stdio child (`KEY=value`). [default: none]
    pub env: Option<Vec<String>>,
    /// `always` (every tool and prompt as `NAME__name`), `never` (names as the server gives them) or
    /// `on_collision` (as given unless a server listed earlier already offers the name). [default: always]
    pub prefix: Option<String>,
    /// `required` (`/ready` fails while this server is not ready) or `optional` (its tools leave the lists
    /// while it is down). [default: required]
    pub health: Option<String>,
    /// Interval of this server's health check, e.g. `"5s"` (at least 100ms). [default: 5s]
    pub health_interval: Option<String>,
    /// Which protocol era the gateway speaks to it: `legacy` (`initialize` and a session), `modern` (2026-07-28,
    /// stateless, `server/discover`) or `auto` (legacy, else modern when `initialize` is refused). [default: auto]
    pub era: Option<String>,
    /// This server's Server Card fields (`name`, `version`, `title`, `description`, `website_url`; see
    /// `config/card.rs`), winning over what the server says. [default: from the server]
    pub card: Option<super::RawCard>,
}

/// The validated federation: the servers in configuration order (the order decides who keeps an unprefixed name
/// under `on_collision`).
#[derive(Debug, Clone, Serialize)]
pub struct FederationConfig {
    /// The servers, at least one, at most [`MAX_SERVERS`].
    pub servers: Vec<ServerConfig>,
}

/// One federated server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Its name (see [`RawServer::name`]).
    pub name: String,
    /// How the gateway reaches it.
    #[serde(flatten)]
    pub target: ServerTarget,
    /// Its naming rule.
    pub prefix: PrefixMode,
    /// Its health policy.
    pub health: HealthPolicy,
    /// Interval of its health check.
    #[serde(serialize_with = "ser::duration")]
    pub health_interval: Duration,
    /// The era spoken to it.
    pub era: ServerEra,
    /// Its Server Card fields set by the operator.
    pub card: super::CardFields,
}

/// Which protocol era the gateway speaks to a federated server (its clients may speak either: the federation
/// bridges, `docs/gateway-federation.md` §Eras).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerEra {
    /// `initialize` first; `server/discover` when `initialize` is refused (a modern-only server).
    Auto,
    /// Only `initialize` and legacy sessions (2025-11-25 `basic/lifecycle`).
    Legacy,
    /// Only stateless 2026-07-28 requests (`basic/versioning`, `server/discover`).
    Modern,
}

/// How the gateway reaches a federated server.
// A handful per gateway, read once at start: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ServerTarget {
    /// An HTTP pool (one endpoint or several replicas).
    Http(UpstreamConfig),
    /// A stdio command, one child per upstream session (`stdio_mode: session`).
    Stdio(StdioConfig),
}

/// How a server's tool and prompt names appear on the federated endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixMode {
    /// Always `NAME__tool` (the default: adding a server never renames another's tools).
    Always,
    /// Never: the name as the server gives it; a clash with an earlier server is a collision (the earlier
    /// server keeps the name, the later tool is not offered, and the gateway says so).
    Never,
    /// The name as given, unless an earlier server already offers it: then `NAME__tool`.
    OnCollision,
}

/// What a server's failure means for the federated endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthPolicy {
    /// `/ready` answers 503 while this server is not ready (the default).
    Required,
    /// The endpoint stays ready; the server's tools, prompts and resources leave the lists while it is down,
    /// calls to them get a JSON-RPC error naming its state.
    Optional,
}

impl FederationConfig {
    /// What can be said about collisions without connecting: every pair of servers that both offer unprefixed
    /// names (`never`), whose tools may clash. One line each, for `--check-config` and the start-up log.
    pub fn static_warnings(&self) -> Vec<String> {
        let never: Vec<&str> = self
            .servers
            .iter()
            .filter(|s| s.prefix == PrefixMode::Never)
            .map(|s| s.name.as_str())
            .collect();
        let mut out = Vec::new();
        for (i, a) in never.iter().enumerate() {
            for b in &never[i + 1..] {
                out.push(format!(
                    "servers: {a} and {b} both use prefix: never; a tool or prompt name both offer is kept by {a} and hidden from {b} (reported at start and by GET /servers)"
                ));
            }
        }
        out
    }
}

/// Checks `servers:` (`None` or empty: no federation). `upstream_timeout` bounds each upstream request.
pub(crate) fn validate(
    raw: Option<&[RawServer]>,
    upstream_timeout: Duration,
    e: &mut FieldErrors,
) -> Option<FederationConfig> {
    let raw = raw.filter(|r| !r.is_empty())?;
    if raw.len() > MAX_SERVERS {
        e.push("servers", format!("at most {MAX_SERVERS} servers"));
    }
    let mut servers = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let at = |field: &str| format!("servers[{i}].{field}");
        if let Err(msg) = check_name(&s.name) {
            e.push(at("name"), msg);
        } else if raw[..i].iter().any(|o| o.name == s.name) {
            e.push(
                at("name"),
                format!("{:?} is used by an earlier server", s.name),
            );
        }
        let prefix = match s.prefix.as_deref().unwrap_or("always") {
            "always" => PrefixMode::Always,
            "never" => PrefixMode::Never,
            "on_collision" => PrefixMode::OnCollision,
            other => {
                e.push(
                    at("prefix"),
                    format!("{other:?} is not one of never, always, on_collision"),
                );
                PrefixMode::Always
            }
        };
        let health = match s.health.as_deref().unwrap_or("required") {
            "required" => HealthPolicy::Required,
            "optional" => HealthPolicy::Optional,
            other => {
                e.push(
                    at("health"),
                    format!("{other:?} is not one of required, optional"),
                );
                HealthPolicy::Required
            }
        };
        let health_interval = match s.health_interval.as_deref() {
            None => DEFAULT_SERVER_HEALTH_INTERVAL,
            Some(raw) => match parse_duration(raw) {
                Ok(d) if d >= Duration::from_millis(100) => d,
                Ok(_) => {
                    e.push(at("health_interval"), "must be at least 100ms");
                    DEFAULT_SERVER_HEALTH_INTERVAL
                }
                Err(msg) => {
                    e.push(at("health_interval"), msg);
                    DEFAULT_SERVER_HEALTH_INTERVAL
                }
            },
        };
        let era = match s.era.as_deref().unwrap_or("auto") {
            "auto" => ServerEra::Auto,
            "legacy" => ServerEra::Legacy,
            "modern" => ServerEra::Modern,
            other => {
                e.push(
                    at("era"),
                    format!("{other:?} is not one of auto, legacy, modern"),
                );
                ServerEra::Auto
            }
        };
        let urls = s.url.as_deref().filter(|u| !u.is_empty());
        let command = s.command.as_deref().filter(|c| !c.is_empty());
        let target = match (urls, command) {
            (Some(_), Some(_)) | (None, None) => {
                e.push(
                    at("url"),
                    "give exactly one of url (HTTP) and command (stdio)",
                );
                None
            }
            (Some(urls), None) => {
                if s.env.is_some() {
                    e.push(at("env"), "only applies to a stdio command");
                }
                let mut endpoints = Vec::new();
                for (j, u) in urls.iter().enumerate() {
                    if let Some(url) = e.check(
                        &format!("servers[{i}].url[{j}]"),
                        super::validate::parse_http_url(u),
                    ) {
                        endpoints.push(EndpointConfig {
                            url,
                            weight: 1,
                            group: DEFAULT_GROUP.to_owned(),
                            discovery: Discovery::Static,
                            ready_port: None,
                        });
                    }
                }
                endpoints
                    .first()
                    .map(|first| first.url.clone())
                    .map(|first| {
                        ServerTarget::Http(UpstreamConfig {
                            mcp_url: Some(first),
                            sse_url: None,
                            timeout: upstream_timeout,
                            headers: Vec::new(),
                            pool: PoolConfig {
                                endpoints,
                                dns_interval: DEFAULT_DNS_INTERVAL,
                                health_interval: DEFAULT_HEALTH_INTERVAL,
                                consecutive_errors: DEFAULT_CONSECUTIVE_ERRORS,
                                base_ejection_time: DEFAULT_BASE_EJECTION_TIME,
                                max_ejection_time: DEFAULT_MAX_EJECTION_TIME,
                            },
                        })
                    })
            }
            (None, Some(command)) => {
                if command[0].trim().is_empty() {
                    e.push(at("command[0]"), "must name a program");
                }
                let mut env = Vec::new();
                for (j, kv) in s.env.iter().flatten().enumerate() {
                    env.extend(e.check(
                        &format!("servers[{i}].env[{j}]"),
                        lifeline_core::config::parse_env_line(kv),
                    ));
                }
                Some(ServerTarget::Stdio(StdioConfig {
                    program: command[0].clone(),
                    args: command[1..].to_vec(),
                    env,
                    inherit_env: false,
                    mode: StdioMode::Session,
                    pool_size: DEFAULT_POOL_SIZE,
                    max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                }))
            }
        };
        let card = super::card::validate_server(s.card.as_ref(), &at("card"), e);
        if let Some(target) = target {
            servers.push(ServerConfig {
                name: s.name.clone(),
                target,
                prefix,
                health,
                health_interval,
                era,
                card,
            });
        }
    }
    Some(FederationConfig { servers })
}

/// A server name: 1..=[`MAX_SERVER_NAME`] of `[a-z0-9-]`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SERVER_NAME {
        return Err(format!("must be 1 to {MAX_SERVER_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "{name:?} must be lowercase letters, digits or - (it becomes the NAME__ prefix and a path)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> Vec<RawServer> {
        serde_yaml_ng::from_str(yaml).expect("yaml")
    }

    fn check(yaml: &str) -> Result<FederationConfig, String> {
        let servers = raw(yaml);
        let mut e = FieldErrors::new();
        let out = validate(Some(&servers), Duration::from_secs(5), &mut e);
        e.finish(|| out.expect("some"))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn servers_are_checked_with_their_field_paths() {
        let ok = check(
            "- {name: a, url: http://127.0.0.1:1/mcp}\n- {name: b, command: [python, s.py], prefix: never, health: optional}",
        )
        .expect("valid");
        assert_eq!(ok.servers.len(), 2);
        assert_eq!(ok.servers[0].prefix, PrefixMode::Always);
        assert_eq!(ok.servers[0].health, HealthPolicy::Required);
        assert!(matches!(ok.servers[1].target, ServerTarget::Stdio(_)));
        for (yaml, expect) in [
            ("- {name: A, url: http://x/mcp}", "servers[0].name"),
            ("- {name: a__b, url: http://x/mcp}", "servers[0].name"),
            (
                "- {name: a, url: http://x/mcp}\n- {name: a, url: http://y/mcp}",
                "servers[1].name",
            ),
            ("- {name: a}", "servers[0].url"),
            (
                "- {name: a, url: http://x/mcp, command: [x]}",
                "servers[0].url",
            ),
            (
                "- {name: a, url: http://x/mcp, prefix: sometimes}",
                "servers[0].prefix",
            ),
            (
                "- {name: a, url: http://x/mcp, health: maybe}",
                "servers[0].health",
            ),
            ("- {name: a, url: ftp://x/mcp}", "servers[0].url[0]"),
            (
                "- {name: a, url: http://x/mcp, health_interval: 1ms}",
                "servers[0].health_interval",
            ),
        ] {
            let err = check(yaml).expect_err(yaml);
            assert!(err.contains(expect), "{yaml}: {err}");
        }
    }

    #[test]
    fn servers_take_auth_and_need_no_upstream() {
        for yaml in [
            // The federated endpoints are behind the auth layer (`proxy/federated.rs`).
            "servers: [{name: a, url: http://127.0.0.1:1/mcp}]\nauth: {resource: https://mcp.example.com/mcp, api_keys_file: /keys}\n",
            "servers: [{name: a, url: http://127.0.0.1:1/mcp}]\n",
        ] {
            let ok = crate::RawConfig::parse(yaml, crate::FileFormat::Yaml)
                .expect("parses")
                .validate(&|_| Ok(String::new()))
                .unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert!(ok.federation.is_some());
        }
    }

    #[test]
    fn two_never_servers_are_a_static_warning() {
        let cfg = check(
            "- {name: a, url: http://x/mcp, prefix: never}\n- {name: b, url: http://y/mcp, prefix: never}\n- {name: c, url: http://z/mcp}",
        )
        .expect("valid");
        let w = cfg.static_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("a and b"));
    }
}
