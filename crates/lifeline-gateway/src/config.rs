//! Configuration: the raw, serde-friendly [`RawConfig`] (a config file, the environment and the flags each
//! produce one; [`RawConfig::merge`] layers them: defaults < file < `LIFELINE_*` environment < flags) and the
//! typed [`GatewayConfig`] that [`RawConfig::validate`] makes from it, with errors naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use lifeline_core::{DrainPlan, LogFormat};
use serde::{Deserialize, Serialize};
use url::Url;

/// Default client listener: every interface, port 8080.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default admin listener (`/live`, `/ready`, `/healthz`, `/metrics`): every interface, port 9090.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// Default path of the Streamable HTTP endpoint served to clients.
pub const DEFAULT_MCP_PATH: &str = "/mcp";
/// Default path of the 2024-11-05 HTTP+SSE stream served to clients.
pub const DEFAULT_SSE_PATH: &str = "/sse";
/// Default path of the 2024-11-05 HTTP+SSE message endpoint served to clients.
pub const DEFAULT_MESSAGES_PATH: &str = "/messages";
/// Default request body limit: 4 MiB (larger → 413).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Default bound on the wait for the upstream's response headers: 60 s.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// Default interval of SSE keep-alive comments on relayed streams: 15 s.
pub const DEFAULT_SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Default idle time after which the gateway ends a legacy session: 30 min.
pub const DEFAULT_SESSION_IDLE_TTL: Duration = Duration::from_secs(30 * 60);
/// Default bound on sessions (legacy Streamable HTTP plus HTTP+SSE streams): 10,000.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default heartbeat staleness beyond which `/live` fails: 10 s.
pub const DEFAULT_LIVE_STALL: Duration = Duration::from_secs(10);
/// Default lifetime of a cached `/ready` probe result: 5 s.
pub const DEFAULT_READY_TTL: Duration = Duration::from_secs(5);
/// Default bound on one readiness probe of the upstream: 3 s.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time to keep serving everything after a stop signal: 5 s.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// Default deadline of the whole drain, from the stop signal: 25 s.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// Default `Retry-After` on 503 answers: 1 s.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Default `retry:` field (reconnection delay) sent on SSE streams the gateway closes: 1 s.
pub const DEFAULT_SSE_RETRY: Duration = Duration::from_secs(1);
/// Default number of long-lived children in `--stdio-mode pool`: 4.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Longest stdout line (one JSON-RPC message) accepted from a stdio child: 16 MiB. A longer line ends the
/// child, so the gateway never buffers without bound.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Every setting as it appears in a config file (YAML or TOML, `snake_case` keys, durations as strings with
/// units such as `"30s"`), and as the environment and flags produce it. `None` means "not set at this layer".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The upstream MCP endpoint URL (`http://127.0.0.1:3000/mcp`). A URL whose path ends in `/sse` is taken
    /// as a 2024-11-05 HTTP+SSE upstream.
    pub upstream: Option<String>,
    /// The upstream's 2024-11-05 HTTP+SSE stream URL, when it serves one besides its MCP endpoint.
    pub upstream_sse: Option<String>,
    /// Client listener address.
    pub listen: Option<String>,
    /// Admin listener address.
    pub admin_listen: Option<String>,
    /// Path of the Streamable HTTP endpoint for clients.
    pub mcp_path: Option<String>,
    /// Path of the HTTP+SSE stream for clients.
    pub sse_path: Option<String>,
    /// Path of the HTTP+SSE message endpoint for clients.
    pub messages_path: Option<String>,
    /// Origins allowed besides the request's own host (`https://app.example.com`, or `*` for any).
    pub allowed_origins: Option<Vec<String>>,
    /// `Host` values allowed (`example.com`, `example.com:8080`, or `*` for any).
    pub allowed_hosts: Option<Vec<String>>,
    /// Request body limit in bytes.
    pub max_body_bytes: Option<u64>,
    /// Bound on the wait for upstream response headers (`"60s"`).
    pub upstream_timeout: Option<String>,
    /// SSE keep-alive comment interval (`"15s"`, `"0s"` to disable).
    pub sse_keepalive: Option<String>,
    /// Idle time after which a legacy session is ended (`"30m"`).
    pub session_idle_ttl: Option<String>,
    /// Bound on open sessions.
    pub max_sessions: Option<usize>,
    /// Forward the client's `Authorization` header upstream (token passthrough; off by default).
    pub forward_authorization: Option<bool>,
    /// Extra headers sent upstream, each `"Name: value"`.
    pub upstream_headers: Option<Vec<String>>,
    /// A file of extra upstream headers, one `Name: value` a line (`#` comments and blank lines skipped).
    pub upstream_header_file: Option<PathBuf>,
    /// Heartbeat staleness beyond which `/live` fails.
    pub live_stall: Option<String>,
    /// Lifetime of a cached readiness probe.
    pub ready_ttl: Option<String>,
    /// Bound on one readiness probe.
    pub ready_timeout: Option<String>,
    /// Time to keep serving everything after a stop signal.
    pub drain_delay: Option<String>,
    /// Deadline of the whole drain, from the stop signal.
    pub drain_timeout: Option<String>,
    /// `Retry-After` on 503 answers.
    pub retry_after: Option<String>,
    /// `retry:` field on SSE streams the gateway closes.
    pub sse_retry: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// A stdio MCP server to run as the upstream instead of `upstream`: the program and its arguments
    /// (`["npx", "-y", "@modelcontextprotocol/server-everything"]`).
    pub command: Option<Vec<String>>,
    /// `session` (one child per legacy session, the default) or `pool`.
    pub stdio_mode: Option<String>,
    /// Children in `pool` mode.
    pub pool_size: Option<usize>,
    /// Environment variables for the child, each `"KEY=value"`.
    pub env: Option<Vec<String>>,
    /// A file of `KEY=value` lines for the child's environment (`#` comments and blank lines skipped).
    pub env_file: Option<PathBuf>,
    /// Pass the gateway's own environment to the child (off: the child gets only `PATH`, `HOME` and `env`).
    pub inherit_env: Option<bool>,
    /// Test-only: serve `POST /debug/stall?ms=N` on the admin listener, which blocks every runtime worker.
    #[serde(skip)]
    pub debug_stall_endpoint: Option<bool>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where requests go.
    pub upstream: UpstreamConfig,
    /// Client listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Client-facing paths.
    pub paths: Paths,
    /// Rules enforced at the edge.
    pub edge: EdgeConfig,
    /// SSE keep-alive comment interval; `None` disables keep-alives.
    pub sse_keepalive: Option<Duration>,
    /// `retry:` field on SSE streams the gateway closes.
    pub sse_retry: Duration,
    /// Legacy session bounds.
    pub sessions: SessionConfig,
    /// Probe settings.
    pub probes: ProbeConfig,
    /// The drain timetable.
    pub drain: DrainPlan,
    /// `Retry-After` on 503 answers.
    pub retry_after: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Test-only stall endpoint on the admin listener.
    pub debug_stall_endpoint: bool,
    /// The stdio upstream, when the gateway runs its MCP server as a child process (then `upstream` has no
    /// URL).
    pub stdio: Option<StdioConfig>,
}

/// A stdio MCP server run by the gateway (2025-11-25 `basic/transports` §stdio).
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// The program, looked up on `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables (values may be secrets: never logged).
    pub env: Vec<(String, String)>,
    /// Whether the child inherits the gateway's environment; when false it gets only `PATH`, `HOME` and `env`.
    pub inherit_env: bool,
    /// How children map to clients.
    pub mode: StdioMode,
    /// Children in [`StdioMode::Pool`] (default [`DEFAULT_POOL_SIZE`]).
    pub pool_size: usize,
    /// Longest stdout line accepted (default [`DEFAULT_MAX_LINE_BYTES`]).
    pub max_line_bytes: usize,
}

/// How stdio children map to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioMode {
    /// One child per legacy session: started by `initialize`, ended with the session.
    Session,
    /// A fixed set of long-lived children shared by every client.
    Pool,
}

/// Where and how to reach the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The Streamable HTTP endpoint; `None` for an HTTP+SSE-only upstream.
    pub mcp_url: Option<Url>,
    /// The HTTP+SSE stream URL; `None` when the upstream serves none.
    pub sse_url: Option<Url>,
    /// Bound on the wait for response headers.
    pub timeout: Duration,
    /// Extra headers sent on every upstream request (values are secrets, never logged).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Client-facing paths.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Streamable HTTP endpoint (default `/mcp`).
    pub mcp: String,
    /// HTTP+SSE stream (default `/sse`).
    pub sse: String,
    /// HTTP+SSE message endpoint (default `/messages`).
    pub messages: String,
}

/// Rules enforced at the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Allowed origins besides the request's own host (lower-cased `scheme://host[:port]`); `any_origin`
    /// allows every origin.
    pub allowed_origins: Vec<String>,
    /// True when `*` was given as an allowed origin.
    pub any_origin: bool,
    /// Allowed `Host` values; `None` checks nothing. Entries without a port match any port.
    pub allowed_hosts: Option<Vec<String>>,
    /// Request body limit.
    pub max_body_bytes: u64,
    /// Forward the client's `Authorization` header upstream.
    pub forward_authorization: bool,
}

/// Legacy session bounds.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Idle time after which the gateway ends a session.
    pub idle_ttl: Duration,
    /// Bound on open sessions.
    pub max_sessions: usize,
}

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Heartbeat staleness beyond which `/live` fails.
    pub live_stall: Duration,
    /// Lifetime of a cached readiness result.
    pub ready_ttl: Duration,
    /// Bound on one readiness probe.
    pub ready_timeout: Duration,
}

/// A configuration error, naming the field (`drain_timeout: must be greater than drain_delay (5s)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field path, as in a config file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn new(field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Config file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// YAML (`.yaml`, `.yml`, and the default for other extensions).
    Yaml,
    /// TOML (`.toml`).
    Toml,
}

impl FileFormat {
    /// The format implied by a file name: TOML for `.toml`, YAML otherwise.
    pub fn from_path(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => FileFormat::Toml,
            _ => FileFormat::Yaml,
        }
    }
}

impl RawConfig {
    /// Parses a config file's text. Unknown keys are errors.
    ///
    /// Errors: a [`ConfigError`] whose field is `config` and whose message carries the parser's (with line).
    pub fn parse(text: &str, format: FileFormat) -> Result<RawConfig, ConfigError> {
        let parsed = match format {
            FileFormat::Yaml if text.trim().is_empty() => Ok(RawConfig::default()),
            FileFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
            FileFormat::Toml => toml::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| ConfigError::new("config", message))
    }

    /// Layers `over` on top of `self`: every field set in `over` wins.
    pub fn merge(self, over: RawConfig) -> RawConfig {
        macro_rules! pick {
            ($($f:ident),* $(,)?) => { RawConfig { $($f: over.$f.or(self.$f)),* } };
        }
        pick!(
            upstream,
            upstream_sse,
            listen,
            admin_listen,
            mcp_path,
            sse_path,
            messages_path,
            allowed_origins,
            allowed_hosts,
            max_body_bytes,
            upstream_timeout,
            sse_keepalive,
            session_idle_ttl,
            max_sessions,
            forward_authorization,
            upstream_headers,
            upstream_header_file,
            live_stall,
            ready_ttl,
            ready_timeout,
            drain_delay,
            drain_timeout,
            retry_after,
            sse_retry,
            log_format,
            command,
            stdio_mode,
            pool_size,
            env,
            env_file,
            inherit_env,
            debug_stall_endpoint,
        )
    }

    /// Applies defaults and checks every field, reading `upstream_header_file` when set.
    ///
    /// Errors: the first invalid field, named as in a config file.
    pub fn validate(self) -> Result<GatewayConfig, ConfigError> {
        let stdio = self.stdio_config()?;
        let (mcp_url, sse_url) = match (&stdio, self.upstream.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "command",
                    "a stdio command (after --) and upstream are mutually exclusive",
                ))
            }
            (Some(_), None) => {
                if self.upstream_sse.is_some() {
                    return Err(ConfigError::new(
                        "upstream_sse",
                        "only applies to an HTTP upstream, not a stdio command",
                    ));
                }
                (None, None)
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "upstream",
                    "required (the upstream MCP endpoint URL, or a stdio command after --)",
                ))
            }
            (None, Some(upstream_raw)) => {
                let upstream_url = parse_http_url("upstream", upstream_raw)?;
                let sse_explicit = self
                    .upstream_sse
                    .as_deref()
                    .map(|u| parse_http_url("upstream_sse", u))
                    .transpose()?;
                if upstream_url.path().trim_end_matches('/').ends_with("/sse") {
                    (None, Some(sse_explicit.unwrap_or(upstream_url)))
                } else {
                    (Some(upstream_url), sse_explicit)
                }
            }
        };

        let listen = parse_addr("listen", self.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
        let admin_listen = parse_addr(
            "admin_listen",
            self.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN),
        )?;
        if listen == admin_listen && listen.port() != 0 {
            return Err(ConfigError::new("admin_listen", "must differ from listen"));
        }

        let paths = Paths {
            mcp: parse_path(
                "mcp_path",
                self.mcp_path.as_deref().unwrap_or(DEFAULT_MCP_PATH),
            )?,
            sse: parse_path(
                "sse_path",
                self.sse_path.as_deref().unwrap_or(DEFAULT_SSE_PATH),
            )?,
            messages: parse_path(
                "messages_path",
                self.messages_path
                    .as_deref()
                    .unwrap_or(DEFAULT_MESSAGES_PATH),
            )?,
        };
        if paths.mcp == paths.sse || paths.mcp == paths.messages || paths.sse == paths.messages {
            return Err(ConfigError::new(
                "mcp_path",
                "mcp_path, sse_path and messages_path must differ",
            ));
        }

        let mut allowed_origins = Vec::new();
        let mut any_origin = false;
        for (i, o) in self.allowed_origins.unwrap_or_default().iter().enumerate() {
            let o = o.trim();
            if o == "*" {
                any_origin = true;
                continue;
            }
            allowed_origins.push(normalize_origin(o).ok_or_else(|| {
                ConfigError::new(
                    &format!("allowed_origins[{i}]"),
                    format!("{o:?} is not an origin (scheme://host[:port]) or *"),
                )
            })?);
        }

        let allowed_hosts = match self.allowed_hosts {
            Some(hosts) if hosts.iter().any(|h| h.trim() == "*") => None,
            Some(hosts) if !hosts.is_empty() => {
                let mut out = Vec::new();
                for (i, h) in hosts.iter().enumerate() {
                    let h = h.trim().to_ascii_lowercase();
                    if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
                        return Err(ConfigError::new(
                            &format!("allowed_hosts[{i}]"),
                            format!("{h:?} is not a host or host:port"),
                        ));
                    }
                    out.push(h);
                }
                Some(out)
            }
            // DNS rebinding protection (2025-11-25 `basic/transports` §Security Warning, `basic/
            // security_best_practices`): a gateway bound to loopback only answers to loopback host names.
            _ if listen.ip().is_loopback() => Some(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
            ]),
            _ => None,
        };

        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(ConfigError::new("max_body_bytes", "must be at least 1"));
        }

        let mut headers = Vec::new();
        for (i, line) in self.upstream_headers.unwrap_or_default().iter().enumerate() {
            headers.push(parse_header(&format!("upstream_headers[{i}]"), line)?);
        }
        if let Some(path) = &self.upstream_header_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "upstream_header_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                headers.push(parse_header(
                    &format!("upstream_header_file:{}", n + 1),
                    line,
                )?);
            }
        }

        let upstream_timeout = duration(
            "upstream_timeout",
            self.upstream_timeout.as_deref(),
            DEFAULT_UPSTREAM_TIMEOUT,
        )?;
        nonzero("upstream_timeout", upstream_timeout)?;
        let sse_keepalive = duration(
            "sse_keepalive",
            self.sse_keepalive.as_deref(),
            DEFAULT_SSE_KEEPALIVE,
        )?;
        let sse_retry = duration("sse_retry", self.sse_retry.as_deref(), DEFAULT_SSE_RETRY)?;
        let idle_ttl = duration(
            "session_idle_ttl",
            self.session_idle_ttl.as_deref(),
            DEFAULT_SESSION_IDLE_TTL,
        )?;
        nonzero("session_idle_ttl", idle_ttl)?;
        let max_sessions = self.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS);
        let live_stall = duration("live_stall", self.live_stall.as_deref(), DEFAULT_LIVE_STALL)?;
        if live_stall < Duration::from_millis(200) {
            return Err(ConfigError::new("live_stall", "must be at least 200ms"));
        }
        let ready_ttl = duration("ready_ttl", self.ready_ttl.as_deref(), DEFAULT_READY_TTL)?;
        let ready_timeout = duration(
            "ready_timeout",
            self.ready_timeout.as_deref(),
            DEFAULT_READY_TIMEOUT,
        )?;
        nonzero("ready_timeout", ready_timeout)?;
        let drain_delay = duration(
            "drain_delay",
            self.drain_delay.as_deref(),
            DEFAULT_DRAIN_DELAY,
        )?;
        let drain_timeout = duration(
            "drain_timeout",
            self.drain_timeout.as_deref(),
            DEFAULT_DRAIN_TIMEOUT,
        )?;
        if drain_timeout < drain_delay {
            return Err(ConfigError::new(
                "drain_timeout",
                format!(
                    "must be at least drain_delay ({}); both are measured from the stop signal",
                    humantime::format_duration(drain_delay)
                ),
            ));
        }
        let retry_after = duration(
            "retry_after",
            self.retry_after.as_deref(),
            DEFAULT_RETRY_AFTER,
        )?;
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "log_format",
                    format!("{other:?} is not one of text, json"),
                ))
            }
        };

        Ok(GatewayConfig {
            upstream: UpstreamConfig {
                mcp_url,
                sse_url,
                timeout: upstream_timeout,
                headers,
            },
            listen,
            admin_listen,
            paths,
            edge: EdgeConfig {
                allowed_origins,
                any_origin,
                allowed_hosts,
                max_body_bytes,
                forward_authorization: self.forward_authorization.unwrap_or(false),
            },
            sse_keepalive: (!sse_keepalive.is_zero()).then_some(sse_keepalive),
            sse_retry,
            sessions: SessionConfig {
                idle_ttl,
                max_sessions,
            },
            probes: ProbeConfig {
                live_stall,
                ready_ttl,
                ready_timeout,
            },
            drain: DrainPlan {
                delay: drain_delay,
                timeout: drain_timeout,
            },
            retry_after,
            log_format,
            debug_stall_endpoint: self.debug_stall_endpoint.unwrap_or(false),
            stdio,
        })
    }

    /// The stdio upstream settings, `None` without a `command`. Stdio-only settings without a command are
    /// errors, so a typo never silently selects the HTTP upstream.
    fn stdio_config(&self) -> Result<Option<StdioConfig>, ConfigError> {
        let Some(command) = self.command.as_ref().filter(|c| !c.is_empty()) else {
            let stray = [
                ("stdio_mode", self.stdio_mode.is_some()),
                ("pool_size", self.pool_size.is_some()),
                ("env", self.env.as_ref().is_some_and(|e| !e.is_empty())),
                ("env_file", self.env_file.is_some()),
                ("inherit_env", self.inherit_env.is_some()),
            ];
            if let Some((field, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    field,
                    "only applies to a stdio upstream (a command after --)",
                ));
            }
            return Ok(None);
        };
        let program = command[0].clone();
        if program.trim().is_empty() {
            return Err(ConfigError::new("command[0]", "must name a program"));
        }
        let mode = match self.stdio_mode.as_deref().unwrap_or("session") {
            "session" => StdioMode::Session,
            "pool" => StdioMode::Pool,
            other => {
                return Err(ConfigError::new(
                    "stdio_mode",
                    format!("{other:?} is not one of session, pool"),
                ))
            }
        };
        let pool_size = self.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if !(1..=256).contains(&pool_size) {
            return Err(ConfigError::new("pool_size", "must be between 1 and 256"));
        }
        let mut env = Vec::new();
        if let Some(path) = &self.env_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("env_file", format!("cannot read {}: {e}", path.display()))
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                env.push(parse_env(&format!("env_file:{}", n + 1), line)?);
            }
        }
        // Flags come after the file, so a --env wins over the same key in --env-file.
        for (i, kv) in self.env.iter().flatten().enumerate() {
            env.push(parse_env(&format!("env[{i}]"), kv)?);
        }
        Ok(Some(StdioConfig {
            program,
            args: command[1..].to_vec(),
            env,
            inherit_env: self.inherit_env.unwrap_or(false),
            mode,
            pool_size,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }))
    }
}

impl GatewayConfig {
    /// The effective configuration as JSON, with upstream header values redacted: logged once at start-up and
    /// printed by `--check-config`.
    pub fn redacted(&self) -> serde_json::Value {
        let secs = |d: Duration| humantime::format_duration(d).to_string();
        serde_json::json!({
            "upstream": self.upstream.mcp_url.as_ref().map(Url::as_str),
            "upstream_sse": self.upstream.sse_url.as_ref().map(Url::as_str),
            "listen": self.listen.to_string(),
            "admin_listen": self.admin_listen.to_string(),
            "mcp_path": self.paths.mcp,
            "sse_path": self.paths.sse,
            "messages_path": self.paths.messages,
            "allowed_origins": if self.edge.any_origin { vec!["*".to_owned()] } else { self.edge.allowed_origins.clone() },
            "allowed_hosts": self.edge.allowed_hosts.clone().unwrap_or_else(|| vec!["*".to_owned()]),
            "max_body_bytes": self.edge.max_body_bytes,
            "forward_authorization": self.edge.forward_authorization,
            "upstream_headers": self.upstream.headers.iter().map(|(n, _)| format!("{n}: <redacted>")).collect::<Vec<_>>(),
            "upstream_timeout": secs(self.upstream.timeout),
            "sse_keepalive": self.sse_keepalive.map_or_else(|| "0s".to_owned(), secs),
            "sse_retry": secs(self.sse_retry),
            "session_idle_ttl": secs(self.sessions.idle_ttl),
            "max_sessions": self.sessions.max_sessions,
            "live_stall": secs(self.probes.live_stall),
            "ready_ttl": secs(self.probes.ready_ttl),
            "ready_timeout": secs(self.probes.ready_timeout),
            "drain_delay": secs(self.drain.delay),
            "drain_timeout": secs(self.drain.timeout),
            "retry_after": secs(self.retry_after),
            "log_format": match self.log_format { LogFormat::Text => "text", LogFormat::Json => "json" },
            "command": self.stdio.as_ref().map(|s| std::iter::once(&s.program).chain(&s.args).collect::<Vec<_>>()),
            "stdio_mode": self.stdio.as_ref().map(|s| match s.mode { StdioMode::Session => "session", StdioMode::Pool => "pool" }),
            "pool_size": self.stdio.as_ref().map(|s| s.pool_size),
            "env": self.stdio.as_ref().map(|s| s.env.iter().map(|(k, _)| format!("{k}=<redacted>")).collect::<Vec<_>>()),
            "inherit_env": self.stdio.as_ref().map(|s| s.inherit_env),
        })
    }
}

fn parse_http_url(field: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(field, format!("{raw:?} is not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(ConfigError::new(
                field,
                "https upstreams are not supported yet; the gateway is meant to sit next to its upstream in the pod",
            ))
        }
        other => return Err(ConfigError::new(field, format!("scheme {other:?} is not http"))),
    }
    if url.host_str().is_none() {
        return Err(ConfigError::new(field, "has no host"));
    }
    Ok(url)
}

fn parse_addr(field: &str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.trim().parse().map_err(|_| {
        ConfigError::new(
            field,
            format!("{raw:?} is not an address such as 0.0.0.0:8080"),
        )
    })
}

fn parse_path(field: &str, raw: &str) -> Result<String, ConfigError> {
    if !raw.starts_with('/') || raw.contains(['?', '#', ' ']) {
        return Err(ConfigError::new(
            field,
            format!("{raw:?} must be a path starting with /"),
        ));
    }
    Ok(raw.to_owned())
}

fn duration(field: &str, raw: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match raw {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            ConfigError::new(field, format!("{s:?} is not a duration such as 30s: {e}"))
        }),
    }
}

fn nonzero(field: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::new(field, "must be more than 0s"))
    } else {
        Ok(())
    }
}

fn parse_header(field: &str, line: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| ConfigError::new(field, "must be 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| ConfigError::new(field, format!("{:?} is not a header name", name.trim())))?;
    let mut value = HeaderValue::from_str(value.trim())
        .map_err(|_| ConfigError::new(field, "the value has characters a header cannot carry"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn parse_env(field: &str, kv: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| ConfigError::new(field, "must be KEY=value"))?;
    let k = k.trim();
    if k.is_empty() || k.contains('\0') || v.contains('\0') || k.contains(char::is_whitespace) {
        return Err(ConfigError::new(
            field,
            format!("{k:?} is not an environment variable name"),
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `scheme://host[:port]` lower-cased, default ports dropped; `None` when `raw` is not such an origin.
pub(crate) fn normalize_origin(raw: &str) -> Option<String> {
    let url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
    {
        return None;
    }
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), host.to_ascii_lowercase()),
        None => format!("{}://{}", url.scheme(), host.to_ascii_lowercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RawConfig {
        RawConfig {
            upstream: Some("http://127.0.0.1:3000/mcp".into()),
            ..RawConfig::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let cfg = base().validate().expect("valid");
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.edge.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(cfg.sse_keepalive, Some(Duration::from_secs(15)));
        assert_eq!(cfg.sessions.idle_ttl, Duration::from_secs(1800));
        assert_eq!(cfg.drain.delay, Duration::from_secs(5));
        assert_eq!(cfg.drain.timeout, Duration::from_secs(25));
        assert!(
            cfg.edge.allowed_hosts.is_none(),
            "0.0.0.0 checks no Host by default"
        );
        assert!(!cfg.edge.forward_authorization);
        assert!(cfg.upstream.sse_url.is_none());
    }

    #[test]
    fn loopback_listener_defaults_to_loopback_hosts() {
        let cfg = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            admin_listen: Some("127.0.0.1:0".into()),
            ..base()
        }
        .validate()
        .expect("valid");
        assert_eq!(
            cfg.edge.allowed_hosts.as_deref().map(<[String]>::len),
            Some(3)
        );
    }

    #[test]
    fn sse_upstream_is_detected_from_the_path() {
        let cfg = RawConfig {
            upstream: Some("http://127.0.0.1:3001/sse".into()),
            ..RawConfig::default()
        }
        .validate()
        .expect("valid");
        assert!(cfg.upstream.mcp_url.is_none());
        assert_eq!(
            cfg.upstream.sse_url.map(String::from).as_deref(),
            Some("http://127.0.0.1:3001/sse")
        );
    }

    #[test]
    fn layers_merge_in_order() {
        let file = RawConfig::parse(
            "drain_delay: 2s\nmax_sessions: 7\nupstream: http://a/mcp\n",
            FileFormat::Yaml,
        )
        .expect("yaml");
        let env = RawConfig {
            max_sessions: Some(8),
            ..RawConfig::default()
        };
        let flags = RawConfig {
            upstream: Some("http://b/mcp".into()),
            ..RawConfig::default()
        };
        let cfg = RawConfig::default()
            .merge(file)
            .merge(env)
            .merge(flags)
            .validate()
            .expect("valid");
        assert_eq!(cfg.drain.delay, Duration::from_secs(2));
        assert_eq!(cfg.sessions.max_sessions, 8);
        assert_eq!(
            cfg.upstream.mcp_url.map(String::from).as_deref(),
            Some("http://b/mcp")
        );
    }

    #[test]
    fn toml_parses_and_unknown_keys_fail() {
        let raw = RawConfig::parse(
            "upstream = \"http://a/mcp\"\nready_ttl = \"2s\"\n",
            FileFormat::Toml,
        )
        .expect("toml");
        assert_eq!(raw.ready_ttl.as_deref(), Some("2s"));
        let err =
            RawConfig::parse("upstream: http://a/mcp\nbogus: 1\n", FileFormat::Yaml).unwrap_err();
        assert!(err.message.contains("bogus"), "{err}");
        assert_eq!(FileFormat::from_path(Path::new("x.TOML")), FileFormat::Toml);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(RawConfig, &str)> = vec![
            (RawConfig::default(), "upstream"),
            (
                RawConfig {
                    upstream: Some("ftp://x/".into()),
                    ..base()
                },
                "upstream",
            ),
            (
                RawConfig {
                    upstream: Some("https://x/mcp".into()),
                    ..base()
                },
                "upstream",
            ),
            (
                RawConfig {
                    listen: Some("nowhere".into()),
                    ..base()
                },
                "listen",
            ),
            (
                RawConfig {
                    drain_delay: Some("10s".into()),
                    drain_timeout: Some("5s".into()),
                    ..base()
                },
                "drain_timeout",
            ),
            (
                RawConfig {
                    upstream_timeout: Some("soon".into()),
                    ..base()
                },
                "upstream_timeout",
            ),
            (
                RawConfig {
                    allowed_origins: Some(vec!["x".into()]),
                    ..base()
                },
                "allowed_origins[0]",
            ),
            (
                RawConfig {
                    upstream_headers: Some(vec!["NoColon".into()]),
                    ..base()
                },
                "upstream_headers[0]",
            ),
            (
                RawConfig {
                    live_stall: Some("10ms".into()),
                    ..base()
                },
                "live_stall",
            ),
            (
                RawConfig {
                    log_format: Some("xml".into()),
                    ..base()
                },
                "log_format",
            ),
            (
                RawConfig {
                    mcp_path: Some("mcp".into()),
                    ..base()
                },
                "mcp_path",
            ),
            (
                RawConfig {
                    max_body_bytes: Some(0),
                    ..base()
                },
                "max_body_bytes",
            ),
        ];
        for (raw, field) in cases {
            let err = raw.clone().validate().expect_err(field);
            assert_eq!(err.field, field, "{raw:?} → {err}");
        }
    }

    #[test]
    fn stdio_command_selects_the_stdio_upstream() {
        let dir = std::env::temp_dir().join(format!("lifeline-env-{}", std::process::id()));
        std::fs::write(&dir, "# comment\nA=from-file\n\nB=x=y\n").expect("write");
        let cfg = RawConfig {
            command: Some(vec!["python".into(), "server.py".into()]),
            env: Some(vec!["A=from-flag".into()]),
            env_file: Some(dir.clone()),
            ..RawConfig::default()
        }
        .validate()
        .expect("valid");
        let _ = std::fs::remove_file(&dir);
        let stdio = cfg.stdio.as_ref().expect("stdio");
        assert_eq!(stdio.program, "python");
        assert_eq!(stdio.args, vec!["server.py".to_owned()]);
        assert_eq!(stdio.mode, StdioMode::Session);
        assert_eq!(stdio.pool_size, DEFAULT_POOL_SIZE);
        assert!(!stdio.inherit_env);
        assert_eq!(
            stdio.env,
            vec![
                ("A".into(), "from-file".into()),
                ("B".into(), "x=y".into()),
                ("A".into(), "from-flag".into())
            ]
        );
        assert!(cfg.upstream.mcp_url.is_none());
        let text = cfg.redacted().to_string();
        assert!(!text.contains("from-flag"), "{text}");
        assert!(text.contains("A=<redacted>"), "{text}");
    }

    #[test]
    fn stdio_errors_name_the_field() {
        let cmd = || Some(vec!["server".to_owned()]);
        let cases: Vec<(RawConfig, &str)> = vec![
            (
                RawConfig {
                    command: cmd(),
                    ..base()
                },
                "command",
            ),
            (
                RawConfig {
                    command: cmd(),
                    stdio_mode: Some("fork".into()),
                    ..RawConfig::default()
                },
                "stdio_mode",
            ),
            (
                RawConfig {
                    command: cmd(),
                    env: Some(vec!["NOEQUALS".into()]),
                    ..RawConfig::default()
                },
                "env[0]",
            ),
            (
                RawConfig {
                    command: cmd(),
                    pool_size: Some(0),
                    ..RawConfig::default()
                },
                "pool_size",
            ),
            (
                RawConfig {
                    inherit_env: Some(true),
                    ..base()
                },
                "inherit_env",
            ),
            (
                RawConfig {
                    command: Some(vec![String::new()]),
                    ..RawConfig::default()
                },
                "command[0]",
            ),
        ];
        for (raw, field) in cases {
            let err = raw.clone().validate().expect_err(field);
            assert_eq!(err.field, field, "{raw:?} → {err}");
        }
    }

    #[test]
    fn origins_normalize() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example.com/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            normalize_origin("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(normalize_origin("http://a:80").as_deref(), Some("http://a"));
        assert_eq!(normalize_origin("null"), None);
        assert_eq!(normalize_origin("http://a/path"), None);
    }

    #[test]
    fn header_values_are_secret_in_the_summary() {
        let cfg = RawConfig {
            upstream_headers: Some(vec!["X-Api-Key: hunter2".into()]),
            ..base()
        }
        .validate()
        .expect("valid");
        let text = cfg.redacted().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("x-api-key: <redacted>"), "{text}");
    }
}
