//! `lifeline gateway`: flags and `LIFELINE_*` environment (clap), the optional config file, telemetry, then
//! `lifeline_gateway::Gateway` until a stop signal and its drain: this file owns the OS signals and walks the
//! gateway's `Shutdown` through the drain timetable (`lifeline_core::supervise`). Exit codes: after a signal
//! the rule of `exit::after_signal` (0 once the drain is over: clean, forced or cut short by a second signal),
//! 64 for a bad configuration, 2 when a listener cannot be bound.

use std::path::PathBuf;

use anyhow::Context as _;
use lifeline_gateway::{FileFormat, Gateway, RawConfig};

use crate::exit::{self, UsageError, OK};

/// Arguments of `lifeline gateway`. Every flag can also come from the `LIFELINE_*` variable named in its help
/// and from `--config`; precedence: defaults < config file < environment < flags.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Precedence: built-in defaults < --config file < LIFELINE_* environment < flags. \
Durations take units (500ms, 5s, 30m). Logs go to stderr, filtered by LIFELINE_LOG (default: info)."
)]
pub(crate) struct Args {
    /// The upstream MCP endpoint (Streamable HTTP, either era), e.g. http://127.0.0.1:3000/mcp. A URL whose path
    /// ends in /sse is taken as a 2024-11-05 HTTP+SSE upstream. Required unless a stdio command follows --.
    #[arg(long, env = "LIFELINE_UPSTREAM", value_name = "URL")]
    upstream: Option<String>,

    /// The upstream's 2024-11-05 HTTP+SSE stream URL, when it serves one besides its MCP endpoint; enables the
    /// client-side /sse and /messages routes. [default: none]
    #[arg(long, env = "LIFELINE_UPSTREAM_SSE", value_name = "URL")]
    upstream_sse: Option<String>,

    /// Client listener address. [default: 0.0.0.0:8080]
    #[arg(long, env = "LIFELINE_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    /// Admin listener address (/live, /ready, /healthz, /metrics). [default: 0.0.0.0:9090]
    #[arg(long, env = "LIFELINE_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<String>,

    /// Client-facing path of the Streamable HTTP endpoint. [default: /mcp]
    #[arg(long, env = "LIFELINE_MCP_PATH", value_name = "PATH")]
    mcp_path: Option<String>,

    /// Client-facing path of the 2024-11-05 HTTP+SSE stream. [default: /sse]
    #[arg(long, env = "LIFELINE_SSE_PATH", value_name = "PATH")]
    sse_path: Option<String>,

    /// Client-facing path of the 2024-11-05 HTTP+SSE message endpoint. [default: /messages]
    #[arg(long, env = "LIFELINE_MESSAGES_PATH", value_name = "PATH")]
    messages_path: Option<String>,

    /// An Origin allowed besides the request's own host (`scheme://host` or `scheme://host:port`); repeat, or comma-separate in
    /// the variable; `*` allows any. A request without Origin always passes; a foreign one gets 403.
    /// [default: none]
    #[arg(
        long = "allowed-origin",
        env = "LIFELINE_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// A Host header value allowed (host or host:port); repeat or comma-separate; `*` checks none. Guards against
    /// DNS rebinding. [default: localhost, 127.0.0.1, `[::1]` when --listen is a loopback address, else any]
    #[arg(
        long = "allowed-host",
        env = "LIFELINE_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,

    /// Request body limit in bytes; larger bodies get 413. [default: 4194304 (4 MiB)]
    #[arg(long, env = "LIFELINE_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<u64>,

    /// Bound on the wait for the upstream's response headers (a JSON-reply server answers a tool call only when
    /// it is done: set this above your longest tool call); then 504. Streams after the headers are unbounded.
    /// [default: 60s]
    #[arg(long, env = "LIFELINE_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    upstream_timeout: Option<String>,

    /// Interval of the SSE keep-alive comment injected into quiet relayed streams; 0s disables. [default: 15s]
    #[arg(long, env = "LIFELINE_SSE_KEEPALIVE", value_name = "DURATION")]
    sse_keepalive: Option<String>,

    /// The reconnection delay (SSE `retry:` field) sent on streams the gateway closes while draining.
    /// [default: 1s]
    #[arg(long, env = "LIFELINE_SSE_RETRY", value_name = "DURATION")]
    sse_retry: Option<String>,

    /// Idle time after which the gateway ends a legacy session and sends the upstream its DELETE.
    /// [default: 30m]
    #[arg(long, env = "LIFELINE_SESSION_IDLE_TTL", value_name = "DURATION")]
    session_idle_ttl: Option<String>,

    /// Bound on open sessions (legacy Streamable HTTP sessions plus HTTP+SSE streams); a new one beyond it gets
    /// 503 with Retry-After. [default: 10000]
    #[arg(long, env = "LIFELINE_MAX_SESSIONS", value_name = "N")]
    max_sessions: Option<usize>,

    /// Forward the client's Authorization header to the upstream. Off by default: the MCP spec forbids token
    /// passthrough; give the upstream its own credentials with --upstream-header. [default: false]
    #[arg(long, env = "LIFELINE_FORWARD_AUTHORIZATION", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    forward_authorization: Option<bool>,

    /// A header sent on every upstream request, 'Name: value' (e.g. an API key); repeatable. Values are never
    /// logged. [default: none]
    #[arg(
        long = "upstream-header",
        env = "LIFELINE_UPSTREAM_HEADER",
        value_name = "HEADER"
    )]
    upstream_headers: Vec<String>,

    /// A file of upstream headers, one 'Name: value' a line (# comments allowed), e.g. a mounted Kubernetes
    /// Secret. [default: none]
    #[arg(long, env = "LIFELINE_UPSTREAM_HEADER_FILE", value_name = "FILE")]
    upstream_header_file: Option<PathBuf>,

    /// /live fails when the runtime's heartbeat is older than this (or a stall this long just happened).
    /// [default: 10s]
    #[arg(long, env = "LIFELINE_LIVE_STALL", value_name = "DURATION")]
    live_stall: Option<String>,

    /// How long a /ready probe result is reused: the upstream sees at most one probe per TTL. [default: 5s]
    #[arg(long, env = "LIFELINE_READY_TTL", value_name = "DURATION")]
    ready_ttl: Option<String>,

    /// Bound on one readiness probe of the upstream; keep it below the kubelet's timeoutSeconds. [default: 3s]
    #[arg(long, env = "LIFELINE_READY_TIMEOUT", value_name = "DURATION")]
    ready_timeout: Option<String>,

    /// After SIGTERM/SIGINT, keep serving everything this long (the load balancer's deregistration window)
    /// while /ready already fails. [default: 5s]
    #[arg(long, env = "LIFELINE_DRAIN_DELAY", value_name = "DURATION")]
    drain_delay: Option<String>,

    /// Deadline of the whole drain, counted from the signal: new work is refused after --drain-delay, work in
    /// flight may finish until this, then the rest is cut. Keep it below terminationGracePeriodSeconds.
    /// [default: 25s]
    #[arg(long, env = "LIFELINE_DRAIN_TIMEOUT", value_name = "DURATION")]
    drain_timeout: Option<String>,

    /// Retry-After sent with 503 answers (draining, too many sessions). [default: 1s]
    #[arg(long, env = "LIFELINE_RETRY_AFTER", value_name = "DURATION")]
    retry_after: Option<String>,

    /// Log format on stderr: text or json. [default: text]
    #[arg(long, env = "LIFELINE_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,

    /// How stdio children map to clients: session (one child per legacy session, ended with it) or pool
    /// (--pool-size long-lived children shared by all clients, JSON-RPC ids rewritten, restarted with backoff).
    /// Only with a command after --. [default: session]
    #[arg(long, env = "LIFELINE_STDIO_MODE", value_name = "MODE")]
    stdio_mode: Option<String>,

    /// Children kept running in --stdio-mode pool. [default: 4]
    #[arg(long, env = "LIFELINE_POOL_SIZE", value_name = "N")]
    pool_size: Option<usize>,

    /// An environment variable for the stdio child, KEY=value; repeatable. Values are never logged.
    /// [default: none]
    #[arg(long = "env", env = "LIFELINE_ENV", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// A file of KEY=value lines (# comments allowed) for the stdio child's environment, e.g. a mounted
    /// Kubernetes Secret; --env wins over it. [default: none]
    #[arg(long, env = "LIFELINE_ENV_FILE", value_name = "FILE")]
    env_file: Option<PathBuf>,

    /// Pass the gateway's own environment to the stdio child. Off by default: the child gets only PATH, HOME,
    /// --env and --env-file. [default: false]
    #[arg(long, env = "LIFELINE_INHERIT_ENV", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    inherit_env: Option<bool>,

    /// A stdio MCP server to run instead of --upstream, after --: `lifeline gateway -- npx -y
    /// @modelcontextprotocol/server-everything`. The gateway starts it in its own process group and talks MCP
    /// on its stdin/stdout (in a config file: command: [npx, -y, ...]). [default: none]
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,

    /// A YAML or TOML file (by extension; YAML otherwise) with any of the settings above, snake_case keys
    /// (upstream_headers and allowed_origins are lists). Unknown keys are errors. [default: none]
    #[arg(long, env = "LIFELINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration, print the effective settings (secrets redacted) as JSON, and exit.
    #[arg(long)]
    check_config: bool,

    /// Test-only: serve POST /debug/stall?ms=N on the admin listener, which blocks every runtime worker.
    #[arg(long, hide = true, env = "LIFELINE_DEBUG_STALL_ENDPOINT")]
    debug_stall_endpoint: bool,
}

impl Args {
    /// The flags and environment as one config layer.
    fn layer(&self) -> RawConfig {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        RawConfig {
            upstream: self.upstream.clone(),
            upstream_sse: self.upstream_sse.clone(),
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            mcp_path: self.mcp_path.clone(),
            sse_path: self.sse_path.clone(),
            messages_path: self.messages_path.clone(),
            allowed_origins: list(&self.allowed_origins),
            allowed_hosts: list(&self.allowed_hosts),
            max_body_bytes: self.max_body_bytes,
            upstream_timeout: self.upstream_timeout.clone(),
            sse_keepalive: self.sse_keepalive.clone(),
            session_idle_ttl: self.session_idle_ttl.clone(),
            max_sessions: self.max_sessions,
            forward_authorization: self.forward_authorization,
            upstream_headers: list(&self.upstream_headers),
            upstream_header_file: self.upstream_header_file.clone(),
            live_stall: self.live_stall.clone(),
            ready_ttl: self.ready_ttl.clone(),
            ready_timeout: self.ready_timeout.clone(),
            drain_delay: self.drain_delay.clone(),
            drain_timeout: self.drain_timeout.clone(),
            retry_after: self.retry_after.clone(),
            sse_retry: self.sse_retry.clone(),
            log_format: self.log_format.clone(),
            command: list(&self.command),
            stdio_mode: self.stdio_mode.clone(),
            pool_size: self.pool_size,
            env: list(&self.env),
            env_file: self.env_file.clone(),
            inherit_env: self.inherit_env,
            debug_stall_endpoint: self.debug_stall_endpoint.then_some(true),
        }
    }
}

/// Runs `lifeline gateway`; returns the exit code.
pub(crate) async fn run(args: Args) -> anyhow::Result<u8> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read --config {}: {e}", path.display())))?;
            RawConfig::parse(&text, FileFormat::from_path(path))
                .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?
        }
        None => RawConfig::default(),
    };
    let cfg = file
        .merge(args.layer())
        .validate()
        .map_err(|e| UsageError(format!("invalid gateway configuration: {e}")))?;
    if args.check_config {
        println!("{}", serde_json::to_string_pretty(&cfg.redacted())?);
        return Ok(OK);
    }

    let filter = std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "info".to_owned());
    lifeline_core::telemetry::init(cfg.log_format, &filter)
        .map_err(|e| UsageError(e.to_string()))?;
    // Install the handlers before binding, so a signal during start-up drains instead of killing.
    let mut signals =
        lifeline_core::Signals::new().context("installing the SIGTERM/SIGINT handlers")?;
    tracing::info!(config = %cfg.redacted(), "Effective configuration.");
    let gateway = Gateway::bind(cfg).await?;
    tracing::info!(
        listen = %display_addr(gateway.client_addr()),
        admin_listen = %display_addr(gateway.admin_addr()),
        "Gateway listening."
    );
    let shutdown = lifeline_core::Shutdown::new();
    let (plan, inflight) = (gateway.drain_plan(), gateway.in_flight());
    let run = gateway.run(shutdown.clone());
    let ended = lifeline_core::supervise(run, &shutdown, &inflight, plan, &mut signals).await;
    // The gateway serves until the drain forces it to stop, so a signal has always arrived here.
    Ok(ended
        .signal
        .map_or(OK, |signal| exit::after_signal(signal, false)))
}

fn display_addr(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_owned(), |a| a.to_string())
}
