//! [`RawConfig`]: every gateway setting once. The same struct is the config file (serde, `deny_unknown_fields`)
//! and the flags with their `LIFELINE_*` variables (clap), so a setting is declared here once with its help
//! text; [`RawConfig::merge`] layers any two of them field by field without a list of fields.

use std::path::{Path, PathBuf};

use lifeline_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Every setting as it appears in a config file (YAML or TOML, `snake_case` keys, durations as strings with
/// units such as `"30s"`) and as flags (`--kebab-case`, each with the `LIFELINE_*` variable clap reads when the
/// flag is absent). `None` means "not set at this layer"; defaults are the `DEFAULT_*` constants in
/// [`crate::config`], repeated in the help text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The upstream MCP endpoint (Streamable HTTP, either era), e.g. http://127.0.0.1:3000/mcp. A URL whose path
    /// ends in /sse is taken as a 2024-11-05 HTTP+SSE upstream. Repeat it for a pool of replicas (static
    /// endpoints, weight 1, group `default`; the config file's `upstreams:` list gives weights, groups and DNS
    /// discovery). In a file: one URL or a list. Required unless a stdio command follows -- (or `upstreams:`).
    #[arg(long, env = "LIFELINE_UPSTREAM", value_name = "URL")]
    #[serde(default, deserialize_with = "one_or_many")]
    pub upstream: Option<Vec<String>>,

    /// Config file only: the upstream pool, one entry per endpoint (see `docs/gateway-replicas.md`):
    /// `{url, weight: 1, group: default, discovery: static|dns}`. `discovery: dns` re-resolves the URL's host
    /// every `upstream_dns_interval` and makes each address an endpoint (a Kubernetes headless Service).
    /// Exclusive with `upstream`. [default: none]
    #[arg(skip)]
    pub upstreams: Option<Vec<RawEndpoint>>,

    /// How often pool endpoints with `discovery: dns` are resolved again. [default: 5s]
    #[arg(long, env = "LIFELINE_UPSTREAM_DNS_INTERVAL", value_name = "DURATION")]
    pub upstream_dns_interval: Option<String>,

    /// Interval of the active MCP health probe of each endpoint of a pool (more than one endpoint, or DNS
    /// discovery); a single static upstream is probed by /ready as before. [default: 5s]
    #[arg(
        long,
        env = "LIFELINE_UPSTREAM_HEALTH_INTERVAL",
        value_name = "DURATION"
    )]
    pub upstream_health_interval: Option<String>,

    /// Passive outlier detection: this many consecutive connect errors or 5xx answers from one endpoint eject
    /// it from balancing. [default: 5]
    #[arg(long, env = "LIFELINE_UPSTREAM_CONSECUTIVE_ERRORS", value_name = "N")]
    pub upstream_consecutive_errors: Option<u32>,

    /// How long an endpoint's first ejection lasts; each further ejection lasts one more of it, up to
    /// upstream_max_ejection_time. [default: 30s]
    #[arg(
        long,
        env = "LIFELINE_UPSTREAM_BASE_EJECTION_TIME",
        value_name = "DURATION"
    )]
    pub upstream_base_ejection_time: Option<String>,

    /// Bound on one ejection. [default: 300s]
    #[arg(
        long,
        env = "LIFELINE_UPSTREAM_MAX_EJECTION_TIME",
        value_name = "DURATION"
    )]
    pub upstream_max_ejection_time: Option<String>,

    /// The upstream's 2024-11-05 HTTP+SSE stream URL, when it serves one besides its MCP endpoint; enables the
    /// client-side /sse and /messages routes. [default: none]
    #[arg(long, env = "LIFELINE_UPSTREAM_SSE", value_name = "URL")]
    pub upstream_sse: Option<String>,

    /// Client listener address. [default: 0.0.0.0:8080]
    #[arg(long, env = "LIFELINE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Admin listener address (/live, /ready, /healthz, /metrics). [default: 0.0.0.0:9090]
    #[arg(long, env = "LIFELINE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Client-facing path of the Streamable HTTP endpoint. [default: /mcp]
    #[arg(long, env = "LIFELINE_MCP_PATH", value_name = "PATH")]
    pub mcp_path: Option<String>,

    /// Client-facing path of the 2024-11-05 HTTP+SSE stream. [default: /sse]
    #[arg(long, env = "LIFELINE_SSE_PATH", value_name = "PATH")]
    pub sse_path: Option<String>,

    /// Client-facing path of the 2024-11-05 HTTP+SSE message endpoint. [default: /messages]
    #[arg(long, env = "LIFELINE_MESSAGES_PATH", value_name = "PATH")]
    pub messages_path: Option<String>,

    /// An Origin allowed besides the request's own host (`scheme://host` or `scheme://host:port`); repeat, or comma-separate in
    /// the variable; `*` allows any. A request without Origin always passes; a foreign one gets 403.
    /// [default: none]
    #[arg(
        long = "allowed-origin",
        env = "LIFELINE_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// A Host header value allowed (host or host:port); repeat or comma-separate; `*` checks none. Guards against
    /// DNS rebinding. [default: localhost, 127.0.0.1, `[::1]` when --listen is a loopback address, else any]
    #[arg(
        long = "allowed-host",
        env = "LIFELINE_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,

    /// Request body limit in bytes; larger bodies get 413. [default: 4194304 (4 MiB)]
    #[arg(long, env = "LIFELINE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,

    /// Bound on the wait for the upstream's response headers (a JSON-reply server answers a tool call only when
    /// it is done: set this above your longest tool call); then 504. Streams after the headers are unbounded.
    /// [default: 60s]
    #[arg(long, env = "LIFELINE_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<String>,

    /// Interval of the SSE keep-alive comment injected into quiet relayed streams; 0s disables. [default: 15s]
    #[arg(long, env = "LIFELINE_SSE_KEEPALIVE", value_name = "DURATION")]
    pub sse_keepalive: Option<String>,

    /// The reconnection delay (SSE `retry:` field) sent on streams the gateway closes while draining.
    /// [default: 1s]
    #[arg(long, env = "LIFELINE_SSE_RETRY", value_name = "DURATION")]
    pub sse_retry: Option<String>,

    /// Idle time after which the gateway ends a legacy session and sends the upstream its DELETE.
    /// [default: 30m]
    #[arg(long, env = "LIFELINE_SESSION_IDLE_TTL", value_name = "DURATION")]
    pub session_idle_ttl: Option<String>,

    /// Bound on open sessions (legacy Streamable HTTP sessions plus HTTP+SSE streams); a new one beyond it gets
    /// 503 with Retry-After. [default: 10000]
    #[arg(long, env = "LIFELINE_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<usize>,

    /// File of the keys that seal the client-facing Mcp-Session-Id (one key per line, 64 hex digits; the first
    /// line current, an optional second line the previous key, for rotation): any gateway replica with the
    /// file opens any replica's session ids, so replicas need no affinity and no shared store. Unset: session
    /// ids pass through as the upstream minted them. See docs/gateway-replicas.md. [default: none]
    #[arg(long, env = "LIFELINE_SESSION_KEY_FILE", value_name = "FILE")]
    pub session_key_file: Option<PathBuf>,

    /// Forward the client's Authorization header to the upstream. Off by default: the MCP spec forbids token
    /// passthrough; give the upstream its own credentials with --upstream-header. [default: false]
    #[arg(long, env = "LIFELINE_FORWARD_AUTHORIZATION", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub forward_authorization: Option<bool>,

    /// A header sent on every upstream request, 'Name: value' (e.g. an API key); repeatable. Values are never
    /// logged. [default: none]
    #[arg(
        long = "upstream-header",
        env = "LIFELINE_UPSTREAM_HEADER",
        value_name = "HEADER"
    )]
    pub upstream_headers: Option<Vec<String>>,

    /// A file of upstream headers, one 'Name: value' a line (# comments allowed), e.g. a mounted Kubernetes
    /// Secret. [default: none]
    #[arg(long, env = "LIFELINE_UPSTREAM_HEADER_FILE", value_name = "FILE", value_parser = utf8_path)]
    pub upstream_header_file: Option<PathBuf>,

    /// /live fails when the runtime's heartbeat is older than this (or a stall this long just happened).
    /// [default: 10s]
    #[arg(long, env = "LIFELINE_LIVE_STALL", value_name = "DURATION")]
    pub live_stall: Option<String>,

    /// How long a /ready probe result is reused: the upstream sees at most one probe per TTL. [default: 5s]
    #[arg(long, env = "LIFELINE_READY_TTL", value_name = "DURATION")]
    pub ready_ttl: Option<String>,

    /// Bound on one readiness probe of the upstream; keep it below the kubelet's timeoutSeconds. [default: 3s]
    #[arg(long, env = "LIFELINE_READY_TIMEOUT", value_name = "DURATION")]
    pub ready_timeout: Option<String>,

    /// A transaction file (docs/transactions.md) with one transaction of one read-only tool step that /ready runs
    /// after the handshake, through the same evaluator as `lifeline check --transaction`: readiness then takes
    /// the path the tools take. HTTP upstreams only. [default: none]
    #[arg(long, env = "LIFELINE_READY_TRANSACTION", value_name = "FILE", value_parser = utf8_path)]
    pub ready_transaction: Option<PathBuf>,

    /// Plain HTTP dependencies /ready checks after the handshake: a list of `{url, expect_status, timeout}`
    /// (`expect_status` default 200, `timeout` default --ready-timeout). Config file only. [default: none]
    #[arg(skip)]
    pub ready_dependencies: Option<Vec<RawDependency>>,

    /// After SIGTERM/SIGINT, keep serving everything this long (the load balancer's deregistration window)
    /// while /ready already fails. [default: 5s]
    #[arg(long, env = "LIFELINE_DRAIN_DELAY", value_name = "DURATION")]
    pub drain_delay: Option<String>,

    /// Deadline of the whole drain, counted from the signal: new work is refused after --drain-delay, work in
    /// flight may finish until this, then the rest is cut. Keep it below terminationGracePeriodSeconds.
    /// [default: 25s]
    #[arg(long, env = "LIFELINE_DRAIN_TIMEOUT", value_name = "DURATION")]
    pub drain_timeout: Option<String>,

    /// Retry-After sent with 503 answers (draining, too many sessions). [default: 1s]
    #[arg(long, env = "LIFELINE_RETRY_AFTER", value_name = "DURATION")]
    pub retry_after: Option<String>,

    /// Async runtime worker threads (the threads that serve requests). [default: the container's CPU limit
    /// (cgroup cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us) rounded down, at least 1, at most the CPUs
    /// the process may run on; the CPUs the process may run on without a limit]
    #[arg(long, env = "LIFELINE_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<usize>,

    /// Log format on stderr: text or json. [default: text]
    #[arg(long, env = "LIFELINE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// How stdio children map to clients: session (one child per legacy session, ended with it) or pool
    /// (--pool-size long-lived children shared by all clients, JSON-RPC ids rewritten, restarted with backoff).
    /// Only with a command after --. [default: session]
    #[arg(long, env = "LIFELINE_STDIO_MODE", value_name = "MODE")]
    pub stdio_mode: Option<String>,

    /// Children kept running in --stdio-mode pool. [default: 4]
    #[arg(long, env = "LIFELINE_POOL_SIZE", value_name = "N")]
    pub pool_size: Option<usize>,

    /// An environment variable for the stdio child, KEY=value; repeatable. Values are never logged.
    /// [default: none]
    #[arg(long = "env", env = "LIFELINE_ENV", value_name = "KEY=VALUE")]
    pub env: Option<Vec<String>>,

    /// A file of KEY=value lines (# comments allowed) for the stdio child's environment, e.g. a mounted
    /// Kubernetes Secret; --env wins over it. [default: none]
    #[arg(long, env = "LIFELINE_ENV_FILE", value_name = "FILE", value_parser = utf8_path)]
    pub env_file: Option<PathBuf>,

    /// Pass the gateway's own environment to the stdio child. Off by default: the child gets only PATH, HOME,
    /// --env and --env-file. [default: false]
    #[arg(long, env = "LIFELINE_INHERIT_ENV", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub inherit_env: Option<bool>,

    /// A stdio MCP server to run instead of --upstream, after --: `lifeline gateway -- npx -y
    /// @modelcontextprotocol/server-everything`. The gateway starts it in its own process group and talks MCP
    /// on its stdin/stdout (in a config file: command: [npx, -y, ...]). [default: none]
    #[arg(last = true, value_name = "CMD")]
    pub command: Option<Vec<String>>,

    /// The gateway as an OAuth 2.1 resource server and policy point (file only; see docs/gateway-auth.md):
    /// resource, jwt[], introspection[], api_keys_file, scopes_supported, tools[], rate_limit, forward_identity.
    /// The --auth-* flags below set the common parts and win over the same settings here. [default: none, every
    /// client is let through as before]
    #[arg(skip)]
    pub auth: Option<super::RawAuth>,

    /// Turns auth on with this canonical resource URI (RFC 8707), e.g. `https://mcp.example.com/mcp`: the
    /// audience tokens must carry and the `resource` of the protected resource metadata. [default: none]
    #[arg(long, env = "LIFELINE_AUTH_RESOURCE", value_name = "URL")]
    pub auth_resource: Option<String>,

    /// A trusted JWT issuer (exactly as in the tokens' `iss`), its keys found by RFC 8414 / OpenID Connect
    /// discovery; repeat, or comma-separate in the variable. Replaces auth.jwt. [default: none]
    #[arg(
        long = "auth-issuer",
        env = "LIFELINE_AUTH_ISSUERS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub auth_issuers: Option<Vec<String>>,

    /// A file of API keys for machine clients, `name sha256:HEX [scope ...]` a line, re-read when it changes
    /// (a mounted Kubernetes Secret). [default: none]
    #[arg(long, env = "LIFELINE_AUTH_API_KEYS_FILE", value_name = "FILE", value_parser = utf8_path)]
    pub auth_api_keys_file: Option<PathBuf>,

    /// A scope advertised in the protected resource metadata and the 401 challenge; repeat or comma-separate.
    /// Replaces auth.scopes_supported. [default: none]
    #[arg(
        long = "auth-scope",
        env = "LIFELINE_AUTH_SCOPES",
        value_name = "SCOPE",
        value_delimiter = ','
    )]
    pub auth_scopes_supported: Option<Vec<String>>,

    /// Send the verified principal upstream as X-Lifeline-Subject and X-Lifeline-Scopes. [default: false]
    #[arg(long, env = "LIFELINE_AUTH_FORWARD_IDENTITY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub auth_forward_identity: Option<bool>,

    /// A file holding the admin token (first line, at least 16 bytes; a Kubernetes Secret), re-read on every
    /// call: `POST /admin/traffic` on the admin port needs `Authorization: Bearer <token>`. Without it the
    /// route answers 403 and changes nothing. [default: none]
    #[arg(long, env = "LIFELINE_ADMIN_TOKEN_FILE", value_name = "FILE", value_parser = utf8_path)]
    pub admin_token_file: Option<PathBuf>,

    /// Config file only: initial traffic weights of the pool's groups, `{blue: 100, green: 0}` (percent, adding
    /// up to 100; groups not listed get 0). New sessions and stateless requests follow them; `POST
    /// /admin/traffic` changes them. [default: none, every endpoint drawn by its own weight]
    #[arg(skip)]
    pub traffic: Option<std::collections::BTreeMap<String, u32>>,
    /// Config file only: the federation, named MCP servers served together on the MCP endpoint and each alone
    /// on `/servers/NAME/mcp` (`docs/gateway-federation.md`): `{name, url | command, env, prefix:
    /// always|never|on_collision, health: required|optional, health_interval}`. [default: none]
    #[arg(skip)]
    pub servers: Option<Vec<super::RawServer>>,
    /// Config file only: the Server Cards and AI Catalog the gateway serves (`docs/gateway.md` §Discovery):
    /// `{enabled, public_url, name, version, title, description, website_url}`. [default: served, fields from
    /// the upstream]
    #[arg(skip)]
    pub card: Option<super::RawCard>,

    /// Test-only: serve POST /debug/stall?ms=N on the admin listener, which blocks every runtime worker. Never
    /// read from a config file. Exists only with the `test-hooks` cargo feature (off in the production binary).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, env = "LIFELINE_DEBUG_STALL_ENDPOINT")]
    #[serde(skip)]
    pub debug_stall_endpoint: bool,
}

/// One entry of `upstreams:` in a config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// The endpoint's MCP URL (or `/sse` URL), as for `upstream`.
    pub url: String,
    /// Relative share of new sessions and stateless requests, 1..=1000. [default: 1]
    pub weight: Option<u32>,
    /// The group the endpoint belongs to (for blue-green): lowercase letters, digits and `-`, at most 63.
    /// [default: `default`]
    pub group: Option<String>,
    /// `static` (the URL as given; its host resolved per connection) or `dns` (every address of the host is an
    /// endpoint, re-resolved every `upstream_dns_interval`). [default: static]
    pub discovery: Option<String>,
    /// The port of the endpoint's sidecar `lifeline gateway` admin listener, on the endpoint's host (for a `dns`
    /// entry, each address): the pool's active health check also GETs `http://HOST:PORT/ready` and any answer
    /// but 200 (none within `ready_timeout` included) marks the endpoint draining: no new sessions, its sessions
    /// stay. 1..=65535, only for a pool (two or more entries, or `discovery: dns`). [default: none]
    pub ready_port: Option<u16>,
}
/// One entry of `ready_dependencies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDependency {
    /// An `http` or `https` URL, fetched with GET.
    pub url: String,
    /// The status that counts as ready. [default: 200]
    pub expect_status: Option<u16>,
    /// Bound on the request, a duration with a unit. [default: --ready-timeout]
    pub timeout: Option<String>,
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
    /// Errors: a [`ConfigError`] with one problem at the path `config`, carrying the parser's message (with
    /// the line).
    pub fn parse(text: &str, format: FileFormat) -> Result<RawConfig, ConfigError> {
        let parsed = match format {
            FileFormat::Yaml if text.trim().is_empty() => Ok(RawConfig::default()),
            FileFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
            FileFormat::Toml => toml::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| ConfigError::one("config", message))
    }

    /// Layers `over` on top of `self`: every field set in `over` wins. Generic over the fields (through their
    /// serde form), so a new setting needs no line here.
    pub fn merge(self, over: RawConfig) -> RawConfig {
        #[cfg(feature = "test-hooks")]
        let debug_stall_endpoint = self.debug_stall_endpoint || over.debug_stall_endpoint;
        let mut base = to_map(&self);
        for (key, value) in to_map(&over) {
            if !value.is_null() {
                base.insert(key, value);
            }
        }
        let merged: RawConfig = serde_json::from_value(serde_json::Value::Object(base))
            .expect("two RawConfig layers combine into a RawConfig: the same keys and value types");
        #[cfg(feature = "test-hooks")]
        let merged = RawConfig {
            debug_stall_endpoint,
            ..merged
        };
        merged
    }
}

fn to_map(raw: &RawConfig) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(raw)
        .expect("RawConfig serializes: strings, numbers, bools, UTF-8 paths and lists of them")
    {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `upstream:` in a file is one URL or a list of them.
pub(super) fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(u)) => Some(vec![u]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// Paths from flags and variables must be UTF-8 (a config file's always are), so [`RawConfig::merge`] can
/// carry them through JSON.
fn utf8_path(raw: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(raw))
}
