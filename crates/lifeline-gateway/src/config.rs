//! Gateway configuration, one recipe: [`RawConfig`] (`config/raw.rs`) is every setting once, as a config file
//! (YAML or TOML) and as flags with their `LIFELINE_*` variables; the binary layers defaults < file <
//! environment < flags with [`RawConfig::merge`]; [`RawConfig::validate`] (`config/validate.rs`) applies the
//! defaults below and checks every field, collecting every problem with its field path; the typed
//! [`GatewayConfig`] here is `Serialize` as the effective configuration, with secrets redacted by type.
//!
//! Adding a setting: a field in [`RawConfig`] (help text, flag, variable, file key), its check in `validate`,
//! and its typed field here (with its serde name). This module reads no files and no environment: the
//! binary hands `validate` a reader for `upstream_header_file` and `env_file`.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use lifeline_core::config::ser;
use lifeline_core::secret::Secret;
use lifeline_core::{DrainPlan, LogFormat};
use serde::{Serialize, Serializer};
use url::Url;

pub(crate) mod auth;
pub mod card;
pub mod federation;
mod raw;
pub mod sessions;
pub(crate) mod traffic;
mod validate;

pub use auth::{RawAuth, RawIntrospection, RawJwtIssuer, RawRateLimit, RawToolRule};
pub use card::{CardConfig, CardFields, RawCard};
pub use federation::{FederationConfig, RawServer};
pub use lifeline_core::ConfigError;
pub use raw::{FileFormat, RawConfig, RawDependency, RawEndpoint};
pub use traffic::TrafficConfig;
pub use validate::ReadFile;

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
/// Default interval between DNS resolutions of a pool entry with `discovery: dns`: 5 s.
pub const DEFAULT_DNS_INTERVAL: Duration = Duration::from_secs(5);
/// Default interval of the active MCP health probe of each pool endpoint: 5 s.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Default consecutive connect errors or 5xx answers that eject an endpoint: 5 (Envoy's `consecutive_5xx`).
pub const DEFAULT_CONSECUTIVE_ERRORS: u32 = 5;
/// Default first ejection of an endpoint: 30 s (Envoy's `base_ejection_time`).
pub const DEFAULT_BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
/// Default bound on one ejection: 300 s (Envoy's `max_ejection_time`).
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// Default group of a pool endpoint.
pub const DEFAULT_GROUP: &str = "default";
/// Most entries in `upstreams:` (and repeated `--upstream`), and most addresses one `discovery: dns` entry
/// contributes: 256.
pub const MAX_ENDPOINTS: usize = 256;
/// Upper bound of an endpoint's weight.
pub const MAX_WEIGHT: u32 = 1000;
/// Upper bound of `worker_threads`.
pub const MAX_WORKER_THREADS: usize = 1024;
/// Longest stdout line (one JSON-RPC message) accepted from a stdio child: 16 MiB. A longer line ends the
/// child, so the gateway never buffers without bound.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The validated configuration. Its `Serialize` form is the effective configuration that the binary logs at
/// start-up and `--check-config` prints: the file's flat `snake_case` keys, durations with units, secrets
/// (upstream header values, the child's environment values) as `<redacted>`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayConfig {
    /// Where requests go.
    #[serde(flatten)]
    pub upstream: UpstreamConfig,
    /// Client listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Client-facing paths.
    #[serde(flatten)]
    pub paths: Paths,
    /// Rules enforced at the edge.
    #[serde(flatten)]
    pub edge: EdgeConfig,
    /// SSE keep-alive comment interval; `None` disables keep-alives.
    #[serde(serialize_with = "ser::duration_or_off")]
    pub sse_keepalive: Option<Duration>,
    /// `retry:` field on SSE streams the gateway closes.
    #[serde(serialize_with = "ser::duration")]
    pub sse_retry: Duration,
    /// Legacy session bounds.
    #[serde(flatten)]
    pub sessions: SessionConfig,
    /// Probe settings.
    #[serde(flatten)]
    pub probes: ProbeConfig,
    /// The drain timetable (`drain_delay`, `drain_timeout`).
    #[serde(flatten, serialize_with = "drain_plan")]
    pub drain: DrainPlan,
    /// `Retry-After` on 503 answers.
    #[serde(serialize_with = "ser::duration")]
    pub retry_after: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Runtime worker threads; `None` (serialized `auto`) lets the binary choose from the CPU quota
    /// (`lifeline_core::cpus::worker_threads`). The library never builds a runtime: the binary reads this before
    /// it builds one.
    #[serde(serialize_with = "worker_threads")]
    pub worker_threads: Option<NonZeroUsize>,
    /// Test-only stall endpoint on the admin listener (only with the `test-hooks` cargo feature).
    #[cfg(feature = "test-hooks")]
    #[serde(skip)]
    pub debug_stall_endpoint: bool,
    /// The stdio upstream, when the gateway runs its MCP server as a child process (then `upstream` has no
    /// URL).
    #[serde(flatten)]
    pub stdio: Option<StdioConfig>,
    /// The OAuth 2.1 resource server and policy point (`auth:`); `None` (no `auth:` block and no `--auth-*`
    /// flag) keeps the gateway open, as before. Serialized under `auth` with secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Traffic switching (`config/traffic.rs`): the admin token file and the initial group weights.
    #[serde(flatten)]
    pub traffic: TrafficConfig,
    /// The federation (`servers:`, `config/federation.rs`); `None` serves the one upstream as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationConfig>,
    /// The Server Cards and AI Catalog (`card:`, `config/card.rs`).
    pub card: CardConfig,
}

/// A stdio MCP server run by the gateway (2025-11-25 `basic/transports` §stdio). Serialized as `command`
/// (program and arguments), `stdio_mode`, `pool_size`, `env` (`KEY=<redacted>`) and `inherit_env`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioMode {
    /// One child per legacy session: started by `initialize`, ended with the session.
    Session,
    /// A fixed set of long-lived children shared by every client.
    Pool,
}

/// Where and how to reach the upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamConfig {
    /// The Streamable HTTP endpoint; `None` for an HTTP+SSE-only upstream.
    #[serde(rename = "upstream", serialize_with = "opt_url")]
    pub mcp_url: Option<Url>,
    /// The HTTP+SSE stream URL; `None` when the upstream serves none.
    #[serde(rename = "upstream_sse", serialize_with = "opt_url")]
    pub sse_url: Option<Url>,
    /// Bound on the wait for response headers.
    #[serde(rename = "upstream_timeout", serialize_with = "ser::duration")]
    pub timeout: Duration,
    /// Extra headers sent on every upstream request (values are secrets, never logged).
    #[serde(rename = "upstream_headers", serialize_with = "redacted_headers")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The pool: every endpoint (one for a single `--upstream`, whose `mcp_url`/`sse_url` above are then its
    /// URLs; for a larger pool those are the first entry's), health and ejection settings.
    #[serde(flatten)]
    pub pool: PoolConfig,
}

/// The upstream pool (`upstreams:` or repeated `--upstream`; `docs/gateway-replicas.md`).
#[derive(Debug, Clone, Serialize)]
pub struct PoolConfig {
    /// The configured entries, at least one for an HTTP upstream, at most [`MAX_ENDPOINTS`].
    #[serde(rename = "upstreams")]
    pub endpoints: Vec<EndpointConfig>,
    /// Interval between resolutions of `discovery: dns` entries.
    #[serde(rename = "upstream_dns_interval", serialize_with = "ser::duration")]
    pub dns_interval: Duration,
    /// Interval of the active MCP probe of each endpoint (only for a pool: see [`PoolConfig::is_pool`]).
    #[serde(rename = "upstream_health_interval", serialize_with = "ser::duration")]
    pub health_interval: Duration,
    /// Consecutive connect errors or 5xx answers that eject an endpoint.
    #[serde(rename = "upstream_consecutive_errors")]
    pub consecutive_errors: u32,
    /// First ejection; the n-th lasts n times this, bounded by `max_ejection_time`.
    #[serde(
        rename = "upstream_base_ejection_time",
        serialize_with = "ser::duration"
    )]
    pub base_ejection_time: Duration,
    /// Bound on one ejection.
    #[serde(
        rename = "upstream_max_ejection_time",
        serialize_with = "ser::duration"
    )]
    pub max_ejection_time: Duration,
}

impl PoolConfig {
    /// Whether this is a pool in the full sense: more than one entry, or an entry found by DNS. A single
    /// static endpoint (one `--upstream URL`) behaves as the gateway always did: `/ready` probes it on demand
    /// and nothing probes it in the background.
    pub fn is_pool(&self) -> bool {
        self.endpoints.len() > 1 || self.endpoints.iter().any(|e| e.discovery == Discovery::Dns)
    }
}

/// One entry of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointConfig {
    /// The Streamable HTTP URL, or the HTTP+SSE stream URL when its path ends in `/sse`.
    #[serde(serialize_with = "url")]
    pub url: Url,
    /// Relative share of new sessions and stateless requests (1..=[`MAX_WEIGHT`], default 1).
    pub weight: u32,
    /// The endpoint's group (default [`DEFAULT_GROUP`]), for blue-green.
    pub group: String,
    /// How the endpoint's addresses are found.
    pub discovery: Discovery,
    /// The port of the endpoint's sidecar admin listener (1..=65535; `None`: not read, the default): the active
    /// health check also GETs `/ready` there, on the endpoint's host, and a non-200 marks the endpoint draining
    /// (`upstream/pool.rs`). Only for a pool ([`PoolConfig::is_pool`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_port: Option<u16>,
}

/// How a pool entry's addresses are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// The URL as given: one endpoint, its host resolved by the HTTP client per connection.
    Static,
    /// Every address the URL's host resolves to is an endpoint, resolved again every `dns_interval` (a
    /// Kubernetes headless Service: one A/AAAA record per ready pod).
    Dns,
}

/// Client-facing paths.
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    /// Streamable HTTP endpoint (default `/mcp`).
    #[serde(rename = "mcp_path")]
    pub mcp: String,
    /// HTTP+SSE stream (default `/sse`).
    #[serde(rename = "sse_path")]
    pub sse: String,
    /// HTTP+SSE message endpoint (default `/messages`).
    #[serde(rename = "messages_path")]
    pub messages: String,
}

/// Rules enforced at the edge.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeConfig {
    /// Allowed origins besides the request's own host (lower-cased `scheme://host[:port]`); `any_origin`
    /// allows every origin.
    pub allowed_origins: Vec<String>,
    /// True when `*` was given as an allowed origin.
    pub any_origin: bool,
    /// Allowed `Host` values; `None` checks nothing (serialized as `["*"]`). Entries without a port match any
    /// port.
    #[serde(serialize_with = "hosts_or_any")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Request body limit.
    pub max_body_bytes: u64,
    /// Forward the client's `Authorization` header upstream.
    pub forward_authorization: bool,
}

/// Legacy session bounds.
#[derive(Debug, Clone, Serialize)]
pub struct SessionConfig {
    /// Idle time after which the gateway ends a session.
    #[serde(rename = "session_idle_ttl", serialize_with = "ser::duration")]
    pub idle_ttl: Duration,
    /// Bound on open sessions.
    pub max_sessions: usize,
    /// The keys that seal client-facing session ids (`session_key_file`); `None`: ids pass through.
    #[serde(rename = "session_key_file")]
    pub keys: Option<sessions::SessionKeys>,
}

/// Probe settings.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeConfig {
    /// Heartbeat staleness beyond which `/live` fails.
    #[serde(serialize_with = "ser::duration")]
    pub live_stall: Duration,
    /// Lifetime of a cached readiness result.
    #[serde(serialize_with = "ser::duration")]
    pub ready_ttl: Duration,
    /// Bound on one readiness probe.
    #[serde(serialize_with = "ser::duration")]
    pub ready_timeout: Duration,
    /// The one read-only tool step `/ready` runs after the handshake (`ready_transaction`), its transaction's
    /// timeout capped at `ready_timeout`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "transaction_set"
    )]
    pub ready_transaction: Option<std::sync::Arc<lifeline_mcp::transaction::TransactionSet>>,
    /// The plain HTTP dependencies `/ready` checks after the handshake.
    pub ready_dependencies: Vec<Dependency>,
}

/// One HTTP dependency of `/ready` (`ready_dependencies`).
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    /// The URL fetched with GET; serialized without user info or query (either may hold a secret).
    #[serde(serialize_with = "url_without_secrets")]
    pub url: Url,
    /// The status that counts as ready (default 200).
    pub expect_status: u16,
    /// Bound on the request (default `ready_timeout`, never more).
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
}

impl Dependency {
    /// The URL as shown in `/ready` and logs: without user info or query.
    pub fn label(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }
}

fn transaction_set<S: Serializer>(
    t: &Option<std::sync::Arc<lifeline_mcp::transaction::TransactionSet>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    t.as_deref().serialize(s)
}

fn url_without_secrets<S: Serializer>(u: &Url, s: S) -> Result<S::Ok, S::Error> {
    let d = Dependency {
        url: u.clone(),
        expect_status: 0,
        timeout: Duration::ZERO,
    };
    s.serialize_str(&d.label())
}

/// Default clock skew allowed on a JWT's `exp` and `nbf` and an introspection answer's `exp`: 30 s.
pub const DEFAULT_AUTH_CLOCK_SKEW: Duration = Duration::from_secs(30);
/// Default minimum time between two JWKS refetches caused by an unknown `kid`: 10 s.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default bound on how long an introspection answer is reused (never past the token's `exp`): 60 s.
pub const DEFAULT_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default interval at which `api_keys_file` is re-read: 5 s.
pub const DEFAULT_API_KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// Default bound on one call to an authorization server (discovery, JWKS, introspection): 5 s.
pub const DEFAULT_AUTH_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The `auth:` block, validated: the gateway as an OAuth 2.1 resource server (2025-11-25 `basic/authorization`,
/// 2026-07-28 `basic/authorization/index`) in front of an upstream with no auth code of its own. A request to the
/// MCP endpoint, `/sse` or `/messages` must carry a credential that one of `jwt`, `introspection` or `api_keys`
/// accepts (see the `auth` module); the per-tool rules and the rate limit are applied to the principal it yields.
#[derive(Debug, Clone, Serialize)]
pub struct AuthConfig {
    /// The canonical resource URI (RFC 8707 §2, 2026-07-28 `authorization` §Canonical Server URI), exactly as
    /// written (it is compared with `aud` as a string). `None`: the protected resource metadata names the URL
    /// the request came to, and every issuer and introspection endpoint lists its `audiences`.
    pub resource: Option<String>,
    /// Trusted JWT issuers, in order.
    pub jwt: Vec<JwtIssuer>,
    /// RFC 7662 introspection endpoints for opaque tokens, tried in order.
    pub introspection: Vec<IntrospectionEndpoint>,
    /// Static API keys for machine clients, when `api_keys_file` is set.
    #[serde(flatten)]
    pub api_keys: Option<ApiKeysConfig>,
    /// Scopes named in the protected resource metadata and in the 401 challenge's `scope` (never
    /// `offline_access`: 2026-07-28 `authorization` §Refresh Tokens).
    pub scopes_supported: Vec<String>,
    /// Per-tool policy, first match wins (applied by the `policy` layer).
    pub tools: Vec<ToolRule>,
    /// Per-principal rate limit; `None` sets no limit.
    pub rate_limit: Option<RateLimit>,
    /// Send the verified principal upstream as `X-Lifeline-Subject` / `X-Lifeline-Scopes` (those headers from
    /// clients are always dropped when auth is on).
    pub forward_identity: bool,
    /// Skew allowed on `exp`/`nbf` (default [`DEFAULT_AUTH_CLOCK_SKEW`]).
    #[serde(serialize_with = "ser::duration")]
    pub clock_skew: Duration,
    /// Minimum time between JWKS refetches caused by an unknown `kid` (default
    /// [`DEFAULT_JWKS_REFETCH_INTERVAL`]).
    #[serde(serialize_with = "ser::duration")]
    pub jwks_refetch_interval: Duration,
    /// Bound on the reuse of an introspection answer (default [`DEFAULT_INTROSPECTION_CACHE_TTL`]).
    #[serde(serialize_with = "ser::duration")]
    pub introspection_cache_ttl: Duration,
    /// Bound on one call to an authorization server (default [`DEFAULT_AUTH_FETCH_TIMEOUT`]).
    #[serde(serialize_with = "ser::duration")]
    pub fetch_timeout: Duration,
}

/// A trusted JWT issuer (RFC 9068 access tokens, or any JWT whose `iss` is this issuer).
#[derive(Debug, Clone, Serialize)]
pub struct JwtIssuer {
    /// The issuer identifier, exactly as it appears in `iss` (compared as a string, never normalized: RFC 8414
    /// §3.3, RFC 9207).
    pub issuer: String,
    /// Where its JWKS lives; `None`: the `jwks_uri` of its RFC 8414 / OpenID Connect discovery document.
    #[serde(serialize_with = "opt_url")]
    pub jwks_url: Option<Url>,
    /// Accepted `aud` values (one must be present in the token; RFC 8707 §2, RFC 9068 §4); default the resource.
    pub audiences: Vec<String>,
}

/// An RFC 7662 introspection endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct IntrospectionEndpoint {
    /// The endpoint.
    #[serde(serialize_with = "ser::display")]
    pub url: Url,
    /// The gateway's client id at that authorization server.
    pub client_id: String,
    /// Its client secret (from `client_secret_file`; never printed).
    pub client_secret: Secret,
    /// How the gateway authenticates (RFC 7662 §2.1 requires client authentication).
    pub auth_method: ClientAuthMethod,
    /// Accepted `aud` values of an active token (default the resource).
    pub audiences: Vec<String>,
    /// The issuer behind the endpoint: listed in the protected resource metadata's `authorization_servers`,
    /// and, when set, an answer's `iss` must equal it.
    pub issuer: Option<String>,
}

/// Client authentication at the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded id and secret (the default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Static API keys (`api_keys_file`). Serialized as the file and the number of keys, never the hashes.
#[derive(Debug, Clone)]
pub struct ApiKeysConfig {
    /// The file, re-read every `reload_interval` (a Kubernetes Secret volume swaps a symlink on rotation).
    pub file: PathBuf,
    /// The keys read at start-up.
    pub keys: Vec<ApiKey>,
    /// How often the file is re-read (default [`DEFAULT_API_KEYS_RELOAD_INTERVAL`]).
    pub reload_interval: Duration,
}

/// One API key: `name sha256:HEX [scope ...]` in the file. Only the SHA-256 of the key is held.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The principal's name.
    pub name: String,
    /// SHA-256 of the key as the client sends it.
    pub sha256: [u8; 32],
    /// Scopes granted to the key.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A per-tool rule (`tools[]`): a call of a tool whose name matches `pattern` needs every scope of
/// `require_scopes`; the first matching rule wins, and a tool no rule matches needs no scope beyond
/// authentication.
#[derive(Debug, Clone, Serialize)]
pub struct ToolRule {
    /// The tool name pattern (`match:`).
    #[serde(rename = "match")]
    pub pattern: ToolPattern,
    /// Scopes the caller must hold.
    pub require_scopes: Vec<String>,
}

/// A tool name pattern: the name itself, with `*` standing for any run of characters (`delete_*`, `*_admin`,
/// `*`). Matching is case-sensitive, as tool names are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ToolPattern(String);

impl ToolPattern {
    /// A pattern from its text (validated by the config: non-empty, tool-name characters and `*`).
    pub(crate) fn new(pattern: impl Into<String>) -> ToolPattern {
        ToolPattern(pattern.into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches: each `*` stands for any (possibly empty) run of characters, everything else for
    /// itself.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: the whole name
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// A per-principal token bucket (`rate_limit:`).
#[derive(Debug, Clone, Serialize)]
pub struct RateLimit {
    /// Sustained rate per principal (`per_principal: 20/s`).
    pub per_principal: Rate,
    /// Bucket size (default the rate's count).
    pub burst: u32,
    /// One bucket per principal and tool instead of one per principal.
    pub per_tool: bool,
}

/// A rate, `N/s`, `N/m` or `N/h` (or `N/<duration>`, e.g. `5/10s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per `per`.
    pub count: NonZeroU32,
    /// The window.
    pub per: Duration,
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{}/{}",
            self.count,
            ser::format_duration(self.per)
        ))
    }
}

impl Serialize for ApiKeysConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("api_keys_file", &self.file)?;
        map.serialize_entry("api_keys", &self.keys.len())?;
        map.serialize_entry(
            "api_keys_reload_interval",
            &ser::format_duration(self.reload_interval),
        )?;
        map.end()
    }
}

impl GatewayConfig {
    /// The effective configuration as JSON (the `Serialize` form): logged once at start-up and printed by
    /// `--check-config`.
    pub fn redacted(&self) -> serde_json::Value {
        // Every field serializes infallibly (strings, numbers, bools, lists); `Null` would only hide a bug.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// What is valid but likely not what the operator meant, one sentence each: printed by `--check-config` (on
    /// stderr, prefixed `warning:`) and logged at start-up. Today:
    /// - federation naming hazards ([`FederationConfig::static_warnings`]);
    /// - Server Cards served ahead of `auth:`: the cards and the AI Catalog are public by design (the Server Card
    ///   extension wants discovery before any credential), so with `auth:` on they disclose the server's name,
    ///   version and description to anyone. Silenced by writing `card.enabled: true` (or `false`) in the file.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .federation
            .iter()
            .flat_map(FederationConfig::static_warnings)
            .collect();
        if self.auth.is_some() && self.card.enabled && !self.card.enabled_explicitly {
            out.push(
                "card: the Server Card and /.well-known/ai-catalog.json are served without a credential while auth: is on (they show the server's name, version and description); write card.enabled: false to hide them, or card.enabled: true to keep them and silence this warning".to_owned(),
            );
        }
        out
    }
}

impl Serialize for StdioConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(5))?;
        let command: Vec<&String> = std::iter::once(&self.program).chain(&self.args).collect();
        map.serialize_entry("command", &command)?;
        map.serialize_entry("stdio_mode", &self.mode)?;
        map.serialize_entry("pool_size", &self.pool_size)?;
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, _)| format!("{k}={}", lifeline_core::secret::REDACTED))
            .collect();
        map.serialize_entry("env", &env)?;
        map.serialize_entry("inherit_env", &self.inherit_env)?;
        map.end()
    }
}

fn drain_plan<S: Serializer>(plan: &DrainPlan, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("drain_delay", &ser::format_duration(plan.delay))?;
    map.serialize_entry("drain_timeout", &ser::format_duration(plan.timeout))?;
    map.end()
}

fn worker_threads<S: Serializer>(n: &Option<NonZeroUsize>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.serialize_u64(n.get() as u64),
        None => s.serialize_str("auto"),
    }
}

fn url<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.as_str())
}

fn opt_url<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_str(u.as_str()),
        None => s.serialize_none(),
    }
}

fn redacted_headers<S: Serializer>(
    headers: &[(HeaderName, HeaderValue)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        headers
            .iter()
            .map(|(n, _)| format!("{n}: {}", lifeline_core::secret::REDACTED)),
    )
}

fn hosts_or_any<S: Serializer>(hosts: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    match hosts {
        Some(h) => s.collect_seq(h),
        None => s.collect_seq(["*"]),
    }
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
mod tests;
