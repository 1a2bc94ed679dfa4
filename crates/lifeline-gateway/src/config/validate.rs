//! [`RawConfig::validate`]: defaults applied, every field checked, every problem collected with its field path
//! (`upstream_headers[0]: must be 'Name: value'`, `env_file:3: …` for a line of a mounted file).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use lifeline_core::config::{parse_duration, parse_env_line, setting_lines, split_header};
use lifeline_core::{ConfigError, DrainPlan, FieldErrors, LogFormat};
use url::Url;

use super::*;

/// Reads a file named by a setting (`upstream_header_file`, `env_file`); the binary passes
/// `std::fs::read_to_string`, tests pass a table.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

impl RawConfig {
    /// Applies defaults and checks every field, reading `upstream_header_file` and `env_file` through
    /// `read_file`.
    ///
    /// Errors: every invalid field, named as in a config file, in field order.
    pub fn validate(self, read_file: ReadFile<'_>) -> Result<GatewayConfig, ConfigError> {
        let mut errors = FieldErrors::new();
        let e = &mut errors;
        let stdio = self.stdio_config(e, read_file);
        let endpoints = self.pool_entries(e);
        let (mcp_url, sse_url) = match endpoints.first() {
            None => (None, None),
            Some(first) => {
                let sse_explicit = self
                    .upstream_sse
                    .as_deref()
                    .and_then(|u| e.check("upstream_sse", parse_http_url(u)));
                if sse_explicit.is_some() && endpoints.len() > 1 {
                    e.push(
                        "upstream_sse",
                        "only applies to a single upstream, not to a pool",
                    );
                }
                if is_sse_url(&first.url) {
                    (
                        None,
                        Some(sse_explicit.unwrap_or_else(|| first.url.clone())),
                    )
                } else {
                    (Some(first.url.clone()), sse_explicit)
                }
            }
        };

        let listen = e.check(
            "listen",
            parse_addr(self.listen.as_deref().unwrap_or(DEFAULT_LISTEN)),
        );
        let admin_listen = e.check(
            "admin_listen",
            parse_addr(self.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN)),
        );
        if let (Some(l), Some(a)) = (listen, admin_listen) {
            if l == a && l.port() != 0 {
                e.push("admin_listen", "must differ from listen");
            }
        }
        let listen = listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let admin_listen = admin_listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));

        let mut path = |field: &str, raw: Option<&str>, default: &str| {
            let raw = raw.unwrap_or(default);
            e.check(field, parse_path(raw))
                .unwrap_or_else(|| default.to_owned())
        };
        let paths = Paths {
            mcp: path("mcp_path", self.mcp_path.as_deref(), DEFAULT_MCP_PATH),
            sse: path("sse_path", self.sse_path.as_deref(), DEFAULT_SSE_PATH),
            messages: path(
                "messages_path",
                self.messages_path.as_deref(),
                DEFAULT_MESSAGES_PATH,
            ),
        };
        if paths.mcp == paths.sse || paths.mcp == paths.messages || paths.sse == paths.messages {
            e.push(
                "mcp_path",
                "mcp_path, sse_path and messages_path must differ",
            );
        }

        let mut allowed_origins = Vec::new();
        let mut any_origin = false;
        for (i, o) in self.allowed_origins.iter().flatten().enumerate() {
            let o = o.trim();
            if o == "*" {
                any_origin = true;
            } else if let Some(origin) = normalize_origin(o) {
                allowed_origins.push(origin);
            } else {
                e.push(
                    format!("allowed_origins[{i}]"),
                    format!("{o:?} is not an origin (scheme://host[:port]) or *"),
                );
            }
        }

        let allowed_hosts = match &self.allowed_hosts {
            Some(hosts) if hosts.iter().any(|h| h.trim() == "*") => None,
            Some(hosts) if !hosts.is_empty() => {
                let mut out = Vec::new();
                for (i, h) in hosts.iter().enumerate() {
                    let h = h.trim().to_ascii_lowercase();
                    if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
                        e.push(
                            format!("allowed_hosts[{i}]"),
                            format!("{h:?} is not a host or host:port"),
                        );
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
            e.push("max_body_bytes", "must be at least 1");
        }

        let mut headers = Vec::new();
        for (i, line) in self.upstream_headers.iter().flatten().enumerate() {
            headers.extend(e.check(&format!("upstream_headers[{i}]"), parse_header(line)));
        }
        if let Some(file) = &self.upstream_header_file {
            if let Some(text) = e.check("upstream_header_file", read(read_file, file)) {
                for (n, line) in setting_lines(&text) {
                    headers
                        .extend(e.check(&format!("upstream_header_file:{n}"), parse_header(line)));
                }
            }
        }

        let mut duration = |field: &str, raw: &Option<String>, default: Duration, min: Duration| {
            let d = raw
                .as_deref()
                .map_or(Some(default), |s| e.check(field, parse_duration(s)));
            match d {
                Some(d) if d < min && min == Duration::from_nanos(1) => {
                    e.push(field, "must be more than 0s");
                    default
                }
                Some(d) if d < min => {
                    e.push(
                        field,
                        format!("must be at least {}", humantime::format_duration(min)),
                    );
                    default
                }
                Some(d) => d,
                None => default,
            }
        };
        let any = Duration::ZERO;
        let positive = Duration::from_nanos(1);
        let upstream_timeout = duration(
            "upstream_timeout",
            &self.upstream_timeout,
            DEFAULT_UPSTREAM_TIMEOUT,
            positive,
        );
        let sse_keepalive = duration(
            "sse_keepalive",
            &self.sse_keepalive,
            DEFAULT_SSE_KEEPALIVE,
            any,
        );
        let sse_retry = duration("sse_retry", &self.sse_retry, DEFAULT_SSE_RETRY, any);
        let idle_ttl = duration(
            "session_idle_ttl",
            &self.session_idle_ttl,
            DEFAULT_SESSION_IDLE_TTL,
            positive,
        );
        let live_stall = duration(
            "live_stall",
            &self.live_stall,
            DEFAULT_LIVE_STALL,
            Duration::from_millis(200),
        );
        let ready_ttl = duration("ready_ttl", &self.ready_ttl, DEFAULT_READY_TTL, any);
        let ready_timeout = duration(
            "ready_timeout",
            &self.ready_timeout,
            DEFAULT_READY_TIMEOUT,
            positive,
        );
        let drain_delay = duration("drain_delay", &self.drain_delay, DEFAULT_DRAIN_DELAY, any);
        let drain_timeout = duration(
            "drain_timeout",
            &self.drain_timeout,
            DEFAULT_DRAIN_TIMEOUT,
            any,
        );
        let retry_after = duration("retry_after", &self.retry_after, DEFAULT_RETRY_AFTER, any);
        let dns_interval = duration(
            "upstream_dns_interval",
            &self.upstream_dns_interval,
            DEFAULT_DNS_INTERVAL,
            Duration::from_secs(1),
        );
        let health_interval = duration(
            "upstream_health_interval",
            &self.upstream_health_interval,
            DEFAULT_HEALTH_INTERVAL,
            Duration::from_millis(100),
        );
        let base_ejection_time = duration(
            "upstream_base_ejection_time",
            &self.upstream_base_ejection_time,
            DEFAULT_BASE_EJECTION_TIME,
            Duration::from_millis(100),
        );
        let max_ejection_time = duration(
            "upstream_max_ejection_time",
            &self.upstream_max_ejection_time,
            DEFAULT_MAX_EJECTION_TIME,
            Duration::from_millis(100),
        );
        if max_ejection_time < base_ejection_time {
            e.push(
                "upstream_max_ejection_time",
                "must be at least upstream_base_ejection_time",
            );
        }
        let consecutive_errors = self
            .upstream_consecutive_errors
            .unwrap_or(DEFAULT_CONSECUTIVE_ERRORS);
        if !(1..=1000).contains(&consecutive_errors) {
            e.push("upstream_consecutive_errors", "must be between 1 and 1000");
        }
        let ready_transaction = self.ready_transaction(e, read_file, ready_timeout);
        let mut ready_dependencies = Vec::new();
        for (i, d) in self.ready_dependencies.iter().flatten().enumerate() {
            let path = format!("ready_dependencies[{i}]");
            let url = Url::parse(d.url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            let Some(url) = url else {
                e.push(
                    format!("{path}.url"),
                    "must be an http:// or https:// URL with a host",
                );
                continue;
            };
            let timeout = match &d.timeout {
                None => ready_timeout,
                Some(t) => e
                    .check(&format!("{path}.timeout"), parse_duration(t))
                    .unwrap_or(ready_timeout)
                    .min(ready_timeout),
            };
            let expect_status = d.expect_status.unwrap_or(200);
            if !(100..=599).contains(&expect_status) {
                e.push(
                    format!("{path}.expect_status"),
                    "must be an HTTP status (100-599)",
                );
            }
            ready_dependencies.push(Dependency {
                url,
                expect_status,
                timeout,
            });
        }
        if drain_timeout < drain_delay {
            e.push(
                "drain_timeout",
                format!(
                    "must be at least drain_delay ({}); both are measured from the stop signal",
                    humantime::format_duration(drain_delay)
                ),
            );
        }
        let log_format = self
            .log_format
            .as_deref()
            .and_then(|f| e.check("log_format", f.parse::<LogFormat>()))
            .unwrap_or_default();

        let worker_threads = match self.worker_threads {
            Some(n) if !(1..=MAX_WORKER_THREADS).contains(&n) => {
                e.push(
                    "worker_threads",
                    format!("must be between 1 and {MAX_WORKER_THREADS} (leave it unset to follow the CPU limit)"),
                );
                None
            }
            n => n.and_then(NonZeroUsize::new),
        };

        let auth = super::auth::validate(
            self.auth.as_ref(),
            &super::auth::AuthFlags {
                resource: self.auth_resource.as_deref(),
                issuers: self.auth_issuers.as_deref(),
                api_keys_file: self.auth_api_keys_file.as_ref(),
                scopes: self.auth_scopes_supported.as_deref(),
                forward_identity: self.auth_forward_identity,
            },
            e,
            read_file,
        );
        let federation = super::federation::validate(self.servers.as_deref(), upstream_timeout, e);
        let card = super::card::validate(self.card.as_ref(), e);
        let forward_authorization = self.forward_authorization.unwrap_or(false);
        if forward_authorization && auth.is_some() {
            // 2025-11-25 `basic/authorization` §Access Token Privilege Restriction: the server "MUST NOT pass
            // through the token it received from the MCP client".
            e.push(
                "forward_authorization",
                "cannot be on with auth: the MCP spec forbids passing the client's token through (give the upstream its own credentials with upstream_headers)",
            );
        }

        let traffic = super::traffic::validate(
            self.admin_token_file.as_ref(),
            self.traffic.as_ref(),
            &endpoints,
            e,
            read_file,
        );
        let session_keys = super::sessions::validate(self.session_key_file.as_ref(), e, read_file);

        errors.finish(|| GatewayConfig {
            upstream: UpstreamConfig {
                mcp_url,
                sse_url,
                timeout: upstream_timeout,
                headers,
                pool: PoolConfig {
                    endpoints,
                    dns_interval,
                    health_interval,
                    consecutive_errors,
                    base_ejection_time,
                    max_ejection_time,
                },
            },
            listen,
            admin_listen,
            paths,
            edge: EdgeConfig {
                allowed_origins,
                any_origin,
                allowed_hosts,
                max_body_bytes,
                forward_authorization,
            },
            sse_keepalive: (!sse_keepalive.is_zero()).then_some(sse_keepalive),
            sse_retry,
            sessions: SessionConfig {
                idle_ttl,
                max_sessions: self.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS),
                keys: session_keys,
            },
            probes: ProbeConfig {
                live_stall,
                ready_ttl,
                ready_timeout,
                ready_transaction,
                ready_dependencies,
            },
            drain: DrainPlan {
                delay: drain_delay,
                timeout: drain_timeout,
            },
            retry_after,
            log_format,
            worker_threads,
            #[cfg(feature = "test-hooks")]
            debug_stall_endpoint: self.debug_stall_endpoint,
            stdio,
            auth,
            traffic,
            federation,
            card,
        })
    }

    /// The pool's entries from `upstream` (repeated) or `upstreams:`, each checked; empty for a stdio command
    /// (and then neither may be set) or when neither is given (an error).
    fn pool_entries(&self, e: &mut FieldErrors) -> Vec<EndpointConfig> {
        let command = self.command.as_ref().is_some_and(|c| !c.is_empty());
        let urls = self.upstream.as_deref().filter(|u| !u.is_empty());
        let entries = self.upstreams.as_deref().filter(|u| !u.is_empty());
        if command {
            if urls.is_some() || entries.is_some() {
                let field = if urls.is_some() {
                    "command"
                } else {
                    "upstreams"
                };
                e.push(
                    field,
                    "a stdio command (after --) and upstream are mutually exclusive",
                );
            }
            if self.upstream_sse.is_some() {
                e.push(
                    "upstream_sse",
                    "only applies to an HTTP upstream, not a stdio command",
                );
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        match (urls, entries) {
            // With `servers:` (federation) the top-level upstream is optional.
            (None, None) if self.servers.as_ref().is_some_and(|s| !s.is_empty()) => {}
            (None, None) => e.push(
                "upstream",
                "required (the upstream MCP endpoint URL, or a stdio command after --)",
            ),
            (Some(_), Some(_)) => e.push(
                "upstreams",
                "give the pool either as upstream (flags, variables) or as upstreams (the file), not both",
            ),
            (Some(urls), None) => {
                for (i, raw) in urls.iter().enumerate() {
                    let field = if urls.len() == 1 {
                        "upstream".to_owned()
                    } else {
                        format!("upstream[{i}]")
                    };
                    if let Some(url) = e.check(&field, parse_http_url(raw)) {
                        out.push(EndpointConfig {
                            url,
                            weight: 1,
                            group: DEFAULT_GROUP.to_owned(),
                            discovery: Discovery::Static,
                            ready_port: None,
                        });
                    }
                }
            }
            (None, Some(entries)) => {
                for (i, raw) in entries.iter().enumerate() {
                    let url = e.check(&format!("upstreams[{i}].url"), parse_http_url(&raw.url));
                    let weight = raw.weight.unwrap_or(1);
                    if !(1..=MAX_WEIGHT).contains(&weight) {
                        e.push(
                            format!("upstreams[{i}].weight"),
                            format!("must be between 1 and {MAX_WEIGHT}"),
                        );
                    }
                    let group = raw.group.clone().unwrap_or_else(|| DEFAULT_GROUP.to_owned());
                    if group.is_empty()
                        || group.len() > 63
                        || !group
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    {
                        e.push(
                            format!("upstreams[{i}].group"),
                            format!("{group:?} must be 1 to 63 lowercase letters, digits or -"),
                        );
                    }
                    let discovery = match raw.discovery.as_deref().unwrap_or("static") {
                        "static" => Discovery::Static,
                        "dns" => Discovery::Dns,
                        other => {
                            e.push(
                                format!("upstreams[{i}].discovery"),
                                format!("{other:?} is not one of static, dns"),
                            );
                            Discovery::Static
                        }
                    };
                    if let Some(url) = url {
                        if discovery == Discovery::Dns
                            && !matches!(url.host(), Some(url::Host::Domain(_)))
                        {
                            e.push(
                                format!("upstreams[{i}].discovery"),
                                "dns needs a host name in the URL, not an address",
                            );
                        }
                        if raw.ready_port == Some(0) {
                            e.push(
                                format!("upstreams[{i}].ready_port"),
                                "must be between 1 and 65535 (the port of the sidecar's admin listener)",
                            );
                        }
                        out.push(EndpointConfig {
                            url,
                            weight,
                            group,
                            discovery,
                            ready_port: raw.ready_port.filter(|p| *p != 0),
                        });
                    }
                }
            }
        }
        // A single static endpoint is probed on demand by `/ready`, never in the background: nothing would read
        // its sidecar's `/ready`, so saying so beats ignoring the setting.
        let pool = out.len() > 1 || out.iter().any(|ep| ep.discovery == Discovery::Dns);
        if !pool {
            if let Some(i) = entries
                .unwrap_or_default()
                .iter()
                .position(|raw| raw.ready_port.is_some())
            {
                e.push(
                    format!("upstreams[{i}].ready_port"),
                    "only applies to a pool (two or more entries, or discovery: dns): a single endpoint is not health-checked in the background",
                );
            }
        }
        if out.len() > MAX_ENDPOINTS {
            e.push(
                if entries.is_some() {
                    "upstreams"
                } else {
                    "upstream"
                },
                format!("at most {MAX_ENDPOINTS} endpoints"),
            );
        }
        if let Some(first) = out.first() {
            let sse = is_sse_url(&first.url);
            if out.iter().any(|ep| is_sse_url(&ep.url) != sse) {
                e.push(
                    if entries.is_some() {
                        "upstreams"
                    } else {
                        "upstream"
                    },
                    "every endpoint of a pool must serve the same transport (all /sse, or none)",
                );
            }
        }
        out
    }
    /// `ready_transaction`: the file read and validated (`lifeline_mcp::transaction`), then held to what a
    /// readiness check may do: one transaction of one `tool` step, no side effects allowed (the tool must
    /// declare `readOnlyHint: true`), an HTTP upstream (a stdio warm spare may only be pinged before a client
    /// initializes it), the transaction's timeout capped at `ready_timeout`.
    fn ready_transaction(
        &self,
        e: &mut FieldErrors,
        read_file: ReadFile<'_>,
        ready_timeout: Duration,
    ) -> Option<std::sync::Arc<lifeline_mcp::transaction::TransactionSet>> {
        use lifeline_mcp::transaction::{Action, TransactionSet};
        let file = self.ready_transaction.as_ref()?;
        if self.command.as_ref().is_some_and(|c| !c.is_empty()) {
            e.push(
                "ready_transaction",
                "needs an HTTP upstream: a stdio warm spare may only be pinged before a client initializes it",
            );
            return None;
        }
        let text = e.check("ready_transaction", read(read_file, file))?;
        let mut set = match TransactionSet::from_yaml(&text) {
            Ok(set) => set,
            Err(err) => {
                for line in err.to_string().lines() {
                    e.push("ready_transaction", format!("{}: {line}", file.display()));
                }
                return None;
            }
        };
        let one_tool_step = set.transactions.len() == 1
            && set.transactions[0].steps.len() == 1
            && matches!(set.transactions[0].steps[0].action, Action::Tool { .. });
        if !one_tool_step {
            e.push(
                "ready_transaction",
                format!(
                    "{}: must hold one transaction of one tool step",
                    file.display()
                ),
            );
            return None;
        }
        if set.allow_side_effects {
            e.push(
                "ready_transaction",
                format!(
                    "{}: allow_side_effects must be false: readiness runs every --ready-ttl and calls only tools \
                     that declare readOnlyHint: true",
                    file.display()
                ),
            );
            return None;
        }
        for t in &mut set.transactions {
            t.timeout = t.timeout.min(ready_timeout);
        }
        Some(std::sync::Arc::new(set))
    }

    /// The stdio upstream settings, `None` without a `command`. Stdio-only settings without a command are
    /// errors, so a typo never silently selects the HTTP upstream.
    fn stdio_config(&self, e: &mut FieldErrors, read_file: ReadFile<'_>) -> Option<StdioConfig> {
        let Some(command) = self.command.as_ref().filter(|c| !c.is_empty()) else {
            let stray = [
                ("stdio_mode", self.stdio_mode.is_some()),
                ("pool_size", self.pool_size.is_some()),
                ("env", self.env.as_ref().is_some_and(|e| !e.is_empty())),
                ("env_file", self.env_file.is_some()),
                ("inherit_env", self.inherit_env.is_some()),
            ];
            for (field, _) in stray.iter().filter(|(_, set)| *set) {
                e.push(
                    *field,
                    "only applies to a stdio upstream (a command after --)",
                );
            }
            return None;
        };
        let program = command[0].clone();
        if program.trim().is_empty() {
            e.push("command[0]", "must name a program");
        }
        let mode = match self.stdio_mode.as_deref().unwrap_or("session") {
            "session" => StdioMode::Session,
            "pool" => StdioMode::Pool,
            other => {
                e.push(
                    "stdio_mode",
                    format!("{other:?} is not one of session, pool"),
                );
                StdioMode::Session
            }
        };
        let pool_size = self.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if !(1..=256).contains(&pool_size) {
            e.push("pool_size", "must be between 1 and 256");
        }
        let mut env = Vec::new();
        if let Some(file) = &self.env_file {
            if let Some(text) = e.check("env_file", read(read_file, file)) {
                for (n, line) in setting_lines(&text) {
                    env.extend(e.check(&format!("env_file:{n}"), parse_env_line(line)));
                }
            }
        }
        // Flags come after the file, so a --env wins over the same key in --env-file.
        for (i, kv) in self.env.iter().flatten().enumerate() {
            env.extend(e.check(&format!("env[{i}]"), parse_env_line(kv)));
        }
        Some(StdioConfig {
            program,
            args: command[1..].to_vec(),
            env,
            inherit_env: self.inherit_env.unwrap_or(false),
            mode,
            pool_size,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        })
    }
}

fn read(read_file: ReadFile<'_>, path: &Path) -> Result<String, String> {
    read_file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub(super) fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(
                "https upstreams are not supported yet; the gateway is meant to sit next to its upstream in the pod"
                    .to_owned(),
            )
        }
        other => return Err(format!("scheme {other:?} is not http")),
    }
    if url.host_str().is_none() {
        return Err("has no host".to_owned());
    }
    Ok(url)
}

/// A URL whose path ends in `/sse` names a 2024-11-05 HTTP+SSE stream.
fn is_sse_url(url: &Url) -> bool {
    url.path().trim_end_matches('/').ends_with("/sse")
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not an address such as 0.0.0.0:8080"))
}

fn parse_path(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') || raw.contains(['?', '#', ' ']) {
        return Err(format!("{raw:?} must be a path starting with /"));
    }
    Ok(raw.to_owned())
}

fn parse_header(line: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = split_header(line)?;
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the value has characters a header cannot carry".to_owned())?;
    value.set_sensitive(true);
    Ok((name, value))
}
