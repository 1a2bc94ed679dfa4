//! Monitor configuration: [`Config::from_yaml`] parses the file (serde types in `raw`, `deny_unknown_fields`),
//! expands `${ENV}` and validates into typed values. Every error names the field path, e.g.
//! `targets[3].interval: must be at least 5s`. Precedence: defaults < file < flags (the binary applies flags).

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use lifeline_mcp::probe::{ProbeOptions, Secret, Target, Timeouts, ToolCall};
use url::Url;

mod expand;
mod raw;

use raw::{RawAlert, RawConfig, RawTarget};

/// Default storage: SQLite file `lifeline.db` in the working directory.
pub const DEFAULT_STORAGE: &str = "sqlite://lifeline.db";
/// Default listen address of the status page, API and metrics.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default probe interval per target: 60 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Smallest interval accepted: 5 s.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Default probe timeout: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default consecutive failures that open an incident: 3.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Default consecutive successes that resolve it: 2.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
/// Default probes in flight at once over all targets: 256.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 256;
/// Default raw-result retention: 48 h.
pub const DEFAULT_RETENTION_RAW: Duration = Duration::from_secs(48 * 3600);
/// Default retention of the hourly buckets: 100 days (90-day windows stay exact to the hour).
pub const DEFAULT_RETENTION_HOURLY: Duration = Duration::from_secs(100 * 86400);
/// Default retention of the daily rollups, incidents and events: 400 days.
pub const DEFAULT_RETENTION_DAILY: Duration = Duration::from_secs(400 * 86400);
/// Default timeout of one alert send: 10 s.
pub const DEFAULT_ALERT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default retries of a failed alert send (with exponential backoff from 500 ms): 3.
pub const DEFAULT_ALERT_RETRIES: u32 = 3;
/// PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://…`. Default [`DEFAULT_STORAGE`].
    pub storage: String,
    /// Where the status page, API and metrics listen. Default [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// Status page title. Default `MCP status`.
    pub title: String,
    /// Probes in flight at once. Default [`DEFAULT_MAX_CONCURRENCY`].
    pub max_concurrency: NonZeroU32,
    /// Retention per kind of row.
    pub retention: Retention,
    /// The targets, names unique.
    pub targets: Vec<TargetConfig>,
    /// Alert providers, names unique.
    pub alerts: Vec<AlertConfig>,
    /// Maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Internal periods; not in the file (tests shorten them).
    pub tuning: Tuning,
}

/// How long rows are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Raw results. Default [`DEFAULT_RETENTION_RAW`]; at least 2 h (rollups need the last complete hour).
    pub raw: Duration,
    /// Hourly buckets inside the daily rows. Default [`DEFAULT_RETENTION_HOURLY`].
    pub hourly: Duration,
    /// Daily rollups, incidents, events and sent alerts. Default [`DEFAULT_RETENTION_DAILY`].
    pub daily: Duration,
}

/// Internal periods, with defaults suited to production.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// How often the web snapshot reloads current state. Default 5 s.
    pub snapshot_refresh: Duration,
    /// How often it recomputes uptime windows and daily bars. Default 60 s.
    pub uptime_refresh: Duration,
    /// How often the rollup and retention job runs. Default 60 s.
    pub rollup_every: Duration,
    /// How long after an hour ends before it is rolled up (late results). Default 2 min.
    pub rollup_grace: Duration,
    /// How often results are written in one transaction. Default 500 ms.
    pub flush_every: Duration,
    /// Leader lease time-to-live (renewed every third of it). Default 30 s.
    pub lease_ttl: Duration,
    /// How often the alert outbox is polled. Default 1 s.
    pub dispatch_poll: Duration,
    /// Backoff before the first alert retry (doubling). Default 500 ms.
    pub alert_backoff: Duration,
    /// How long shutdown waits for in-flight probes and sends. Default 15 s.
    pub shutdown_grace: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            snapshot_refresh: Duration::from_secs(5),
            uptime_refresh: Duration::from_secs(60),
            rollup_every: Duration::from_secs(60),
            rollup_grace: Duration::from_secs(120),
            flush_every: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(30),
            dispatch_poll: Duration::from_secs(1),
            alert_backoff: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// One monitored endpoint.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Unique name: 1–64 of `A-Z a-z 0-9 . _ -`; used in URLs, metrics and alerts.
    pub name: String,
    /// The MCP endpoint (`http` or `https`).
    pub url: Url,
    /// Extra request headers; values are secrets (never logged).
    pub headers: Vec<(String, Secret)>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    /// Opt-in `tools/call` after `tools/list`; side effects are the user's choice.
    pub call: Option<ToolCall>,
    /// Probe interval. Default [`DEFAULT_INTERVAL`], at least [`MIN_INTERVAL`].
    pub interval: Duration,
    /// Whole-probe timeout. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Consecutive failures that open an incident. Default [`DEFAULT_FAILURE_THRESHOLD`].
    pub failure_threshold: NonZeroU32,
    /// Consecutive successes that resolve it. Default [`DEFAULT_SUCCESS_THRESHOLD`].
    pub success_threshold: NonZeroU32,
    /// Re-alert an open incident at most this often; `None` (the default) sends no reminders.
    pub reminder_interval: Option<Duration>,
    /// Certificate warning window for the verdict (`cert_expiring`). Default 14 days.
    pub cert_warning_days: i64,
    /// A probe slower than this is `degraded` (`slow`). Default 5 s.
    pub slow_after: Duration,
    /// Count `auth_required` as up (a public endpoint monitored without credentials). Default false.
    pub accept_auth_required: bool,
}

impl TargetConfig {
    /// A target with every default, named `name`.
    pub fn new(name: impl Into<String>, url: Url) -> Self {
        TargetConfig {
            name: name.into(),
            url,
            headers: Vec::new(),
            bearer_token: None,
            call: None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            failure_threshold: nz(DEFAULT_FAILURE_THRESHOLD),
            success_threshold: nz(DEFAULT_SUCCESS_THRESHOLD),
            reminder_interval: None,
            cert_warning_days: lifeline_mcp::probe::config::DEFAULT_CERT_WARNING_DAYS,
            slow_after: lifeline_mcp::probe::config::DEFAULT_SLOW_AFTER,
            accept_auth_required: false,
        }
    }

    /// The probe target.
    pub fn probe_target(&self) -> Target {
        Target::Http(self.url.clone())
    }

    /// The probe options for this target.
    pub fn probe_options(&self) -> ProbeOptions {
        ProbeOptions {
            timeouts: Timeouts {
                total: self.timeout,
                ..Timeouts::default()
            },
            headers: self.headers.clone(),
            bearer_token: self.bearer_token.clone(),
            call: self.call.clone(),
            cert_warning_days: self.cert_warning_days,
            slow_after: self.slow_after,
            // One extra request per probe for a finding that does not change the verdict: not worth it every minute.
            check_origin: false,
            client_name: "lifeline-monitor".to_owned(),
            ..ProbeOptions::default()
        }
    }

    /// The URL without user info, query or fragment, for pages, logs and alerts.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// An alert provider.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Unique name, default the type (`webhook`, `slack`, `pagerduty`, then `-2`, `-3` for repeats). Pending
    /// sends are stored under it, so keep it stable across restarts.
    pub name: String,
    /// Where and how to send.
    pub kind: AlertKind,
    /// Timeout of one attempt. Default [`DEFAULT_ALERT_TIMEOUT`].
    pub timeout: Duration,
    /// Retries after a failed attempt. Default [`DEFAULT_ALERT_RETRIES`].
    pub retries: u32,
}

/// The provider and its settings.
#[derive(Clone)]
pub enum AlertKind {
    /// POST the JSON body of `docs/alerting.md` to `url` with `headers`.
    Webhook {
        /// Target URL (secret: may embed a token).
        url: Url,
        /// Extra headers (values secret).
        headers: Vec<(String, Secret)>,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret).
        webhook_url: Url,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The integration's routing key (a secret).
        routing_key: Secret,
        /// Events endpoint, default [`PAGERDUTY_EVENTS_URL`].
        events_url: Url,
    },
}

impl fmt::Debug for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

impl AlertKind {
    /// `webhook`, `slack` or `pagerduty`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AlertKind::Webhook { .. } => "webhook",
            AlertKind::Slack { .. } => "slack",
            AlertKind::PagerDuty { .. } => "pagerduty",
        }
    }
}

/// A recurring maintenance window: no incident opens and no alert is sent while one covers a target.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    /// Target names; `None` covers every target.
    pub targets: Option<Vec<String>>,
    /// The cron expression as written (UTC; 5 fields, or 6–7 with seconds).
    pub cron: String,
    /// Parsed schedule of window starts.
    pub schedule: cron::Schedule,
    /// Window length.
    pub duration: Duration,
}

impl MaintenanceWindow {
    /// When `target` is covered at `now_ms` (Unix ms), the end of the window (Unix ms).
    pub fn active_until(&self, target: &str, now_ms: i64) -> Option<i64> {
        if let Some(names) = &self.targets {
            if !names.iter().any(|n| n == target) {
                return None;
            }
        }
        let dur_ms = i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX);
        let since = chrono::DateTime::from_timestamp_millis(now_ms.saturating_sub(dur_ms))?;
        // The first start after `now - duration` opens a window covering now if it started by now.
        let start = self.schedule.after(&since).next()?;
        let start_ms = start.timestamp_millis();
        (start_ms <= now_ms).then(|| start_ms + dur_ms)
    }
}

/// One configuration problem, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `targets[3].interval`, or empty for the document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a configuration was rejected: every problem found, each with its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<FieldError>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates YAML. `env` looks up `${NAME}` references (the binary passes the process
    /// environment). Every problem is reported with its field path.
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                // serde_yaml_ng prefixes the field path (`targets[0]: unknown field …`); keep its words.
                ConfigError(vec![FieldError {
                    path: String::new(),
                    message: e.to_string(),
                }])
            })?
        };
        Validator {
            env,
            errors: Vec::new(),
        }
        .config(raw)
    }

    /// The quick start: one target per URL (named after its host), every default.
    pub fn quick_start(urls: &[Url]) -> Result<Config, ConfigError> {
        let mut config = Config::from_yaml("", &|_| None)?;
        let mut errors = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            if !matches!(url.scheme(), "http" | "https") {
                errors.push(FieldError {
                    path: format!("--target[{i}]"),
                    message: "must be an http or https URL".to_owned(),
                });
                continue;
            }
            let base = url.host_str().unwrap_or("target").to_owned();
            let mut name = base.clone();
            let mut n = 2;
            while config.targets.iter().any(|t| t.name == name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            config.targets.push(TargetConfig::new(name, url.clone()));
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// A one-line summary for the start-up log, with every secret left out.
    pub fn summary(&self) -> String {
        let alerts: Vec<String> = self
            .alerts
            .iter()
            .map(|a| format!("{}({})", a.name, a.kind.type_name()))
            .collect();
        format!(
            "storage={} listen={} targets={} alerts=[{}] maintenance_windows={} max_concurrency={}",
            redact_storage(&self.storage),
            self.listen,
            self.targets.len(),
            alerts.join(","),
            self.maintenance.len(),
            self.max_concurrency
        )
    }

    /// The end of the maintenance window covering `target` at `now_ms`, if any (the latest end wins).
    pub fn maintenance_until(&self, target: &str, now_ms: i64) -> Option<i64> {
        self.maintenance
            .iter()
            .filter_map(|w| w.active_until(target, now_ms))
            .max()
    }
}

/// `url` without user info, query or fragment.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A storage URL with its password left out.
pub fn redact_storage(storage: &str) -> String {
    match Url::parse(storage) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => storage.to_owned(),
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

struct Validator<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<FieldError>,
}

impl Validator<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn string(&mut self, path: &str, value: &str) -> Option<String> {
        match expand::expand(value, self.env) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(path, m);
                None
            }
        }
    }

    fn duration(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d < min => {
                self.err(
                    path,
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(
                    path,
                    format!("`{text}` is not a duration like \"60s\", \"5m\" or \"2h\" ({e})"),
                );
                default
            }
        }
    }

    fn threshold(&mut self, path: &str, value: Option<u32>, default: NonZeroU32) -> NonZeroU32 {
        match value {
            None => default,
            Some(v) => NonZeroU32::new(v).unwrap_or_else(|| {
                self.err(path, "must be at least 1");
                default
            }),
        }
    }

    fn url(&mut self, path: &str, value: &str) -> Option<Url> {
        let text = self.string(path, value)?;
        match Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                self.err(path, "must be an http or https URL with a host");
                None
            }
            Err(e) => {
                self.err(path, format!("not a URL ({e})"));
                None
            }
        }
    }

    fn config(mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        let storage = raw
            .storage
            .as_deref()
            .and_then(|s| self.string("storage", s))
            .unwrap_or_else(|| DEFAULT_STORAGE.to_owned());
        if !(storage.starts_with("sqlite:")
            || storage.starts_with("postgres://")
            || storage.starts_with("postgresql://"))
        {
            self.err("storage", "must start with sqlite:// or postgres://");
        }
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = SocketAddr::from_str(listen_text).unwrap_or_else(|_| {
            self.err(
                "listen",
                format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let max_concurrency = self.threshold(
            "max_concurrency",
            raw.max_concurrency,
            nz(DEFAULT_MAX_CONCURRENCY),
        );
        let d = &raw.defaults;
        let mut base = TargetConfig::new(
            "",
            Url::parse("http://127.0.0.1/").expect("a literal URL parses"),
        );
        base.interval = self.duration(
            "defaults.interval",
            d.interval.as_deref(),
            DEFAULT_INTERVAL,
            MIN_INTERVAL,
        );
        base.timeout = self.duration(
            "defaults.timeout",
            d.timeout.as_deref(),
            DEFAULT_TIMEOUT,
            Duration::from_millis(100),
        );
        base.failure_threshold = self.threshold(
            "defaults.failure_threshold",
            d.failure_threshold,
            base.failure_threshold,
        );
        base.success_threshold = self.threshold(
            "defaults.success_threshold",
            d.success_threshold,
            base.success_threshold,
        );
        base.reminder_interval = d.reminder_interval.as_deref().map(|s| {
            self.duration(
                "defaults.reminder_interval",
                Some(s),
                Duration::from_secs(3600),
                Duration::from_secs(60),
            )
        });
        base.slow_after = self.duration(
            "defaults.slow_after",
            d.slow_after.as_deref(),
            base.slow_after,
            Duration::from_millis(1),
        );
        if let Some(days) = d.cert_warning_days {
            base.cert_warning_days = days;
        }
        base.accept_auth_required = d.accept_auth_required.unwrap_or(false);

        let retention = Retention {
            raw: self.duration(
                "retention.raw",
                raw.retention.raw.as_deref(),
                DEFAULT_RETENTION_RAW,
                Duration::from_secs(2 * 3600),
            ),
            hourly: self.duration(
                "retention.hourly",
                raw.retention.hourly.as_deref(),
                DEFAULT_RETENTION_HOURLY,
                Duration::from_secs(86400),
            ),
            daily: self.duration(
                "retention.daily",
                raw.retention.daily.as_deref(),
                DEFAULT_RETENTION_DAILY,
                Duration::from_secs(86400),
            ),
        };

        let mut targets = Vec::with_capacity(raw.targets.len());
        for (i, t) in raw.targets.into_iter().enumerate() {
            if let Some(t) = self.target(&format!("targets[{i}]"), t, &base) {
                if targets.iter().any(|o: &TargetConfig| o.name == t.name) {
                    self.err(
                        format!("targets[{i}].name"),
                        format!("`{}` is used by another target", t.name),
                    );
                }
                targets.push(t);
            }
        }

        let mut alerts: Vec<AlertConfig> = Vec::new();
        for (i, a) in raw.alerts.into_iter().enumerate() {
            if let Some(mut a) = self.alert(&format!("alerts[{i}]"), a) {
                if a.name.is_empty() {
                    let base = a.kind.type_name();
                    a.name = base.to_owned();
                    let mut n = 2;
                    while alerts.iter().any(|o| o.name == a.name) {
                        a.name = format!("{base}-{n}");
                        n += 1;
                    }
                } else if alerts.iter().any(|o| o.name == a.name) {
                    self.err(
                        format!("alerts[{i}].name"),
                        format!("`{}` is used by another alert", a.name),
                    );
                }
                alerts.push(a);
            }
        }

        let mut maintenance = Vec::new();
        for (i, m) in raw.maintenance.into_iter().enumerate() {
            let path = format!("maintenance[{i}]");
            if let Some(names) = &m.targets {
                for (j, n) in names.iter().enumerate() {
                    if !targets.iter().any(|t| &t.name == n) {
                        self.err(
                            format!("{path}.targets[{j}]"),
                            format!("no target is named `{n}`"),
                        );
                    }
                }
            }
            let fields = m.cron.split_whitespace().count();
            let normalised = if fields == 5 {
                format!("0 {}", m.cron.trim())
            } else {
                m.cron.trim().to_owned()
            };
            let duration = self.duration(
                &format!("{path}.duration"),
                Some(&m.duration),
                Duration::from_secs(60),
                Duration::from_secs(60),
            );
            match cron::Schedule::from_str(&normalised) {
                Ok(schedule) => maintenance.push(MaintenanceWindow {
                    targets: m.targets,
                    cron: m.cron,
                    schedule,
                    duration,
                }),
                Err(e) => self.err(
                    format!("{path}.cron"),
                    format!("`{}` is not a cron expression ({e})", m.cron),
                ),
            }
        }

        if self.errors.is_empty() {
            Ok(Config {
                storage,
                listen,
                title: raw.title.unwrap_or_else(|| "MCP status".to_owned()),
                max_concurrency,
                retention,
                targets,
                alerts,
                maintenance,
                tuning: Tuning::default(),
            })
        } else {
            Err(ConfigError(self.errors))
        }
    }

    fn target(&mut self, path: &str, t: RawTarget, base: &TargetConfig) -> Option<TargetConfig> {
        let before = self.errors.len();
        if t.name.is_empty()
            || t.name.len() > 64
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            self.err(
                format!("{path}.name"),
                "must be 1-64 characters of A-Z a-z 0-9 . _ -",
            );
        }
        let url = self.url(&format!("{path}.url"), &t.url);
        let mut headers = Vec::new();
        for (k, v) in &t.headers {
            if let Some(v) = self.string(&format!("{path}.headers.{k}"), v) {
                headers.push((k.clone(), Secret::new(v)));
            }
        }
        let bearer_token = t
            .bearer_token
            .as_deref()
            .and_then(|s| self.string(&format!("{path}.bearer_token"), s))
            .map(Secret::new);
        let call = t.call.map(|c| ToolCall {
            name: c.tool,
            arguments: c.args.unwrap_or_else(|| serde_json::json!({})),
        });
        let mut out = base.clone();
        out.name = t.name;
        out.headers = headers;
        out.bearer_token = bearer_token;
        out.call = call;
        out.interval = self.duration(
            &format!("{path}.interval"),
            t.interval.as_deref(),
            base.interval,
            MIN_INTERVAL,
        );
        out.timeout = self.duration(
            &format!("{path}.timeout"),
            t.timeout.as_deref(),
            base.timeout,
            Duration::from_millis(100),
        );
        out.failure_threshold = self.threshold(
            &format!("{path}.failure_threshold"),
            t.failure_threshold,
            base.failure_threshold,
        );
        out.success_threshold = self.threshold(
            &format!("{path}.success_threshold"),
            t.success_threshold,
            base.success_threshold,
        );
        if let Some(r) = t.reminder_interval.as_deref() {
            out.reminder_interval = Some(self.duration(
                &format!("{path}.reminder_interval"),
                Some(r),
                Duration::from_secs(3600),
                Duration::from_secs(60),
            ));
        }
        out.slow_after = self.duration(
            &format!("{path}.slow_after"),
            t.slow_after.as_deref(),
            base.slow_after,
            Duration::from_millis(1),
        );
        if let Some(days) = t.cert_warning_days {
            out.cert_warning_days = days;
        }
        if let Some(a) = t.accept_auth_required {
            out.accept_auth_required = a;
        }
        if out.timeout > out.interval {
            self.err(format!("{path}.timeout"), "must not exceed the interval");
        }
        match url {
            Some(u) if self.errors.len() == before => {
                out.url = u;
                Some(out)
            }
            _ => None,
        }
    }

    fn alert(&mut self, path: &str, a: RawAlert) -> Option<AlertConfig> {
        let (name, timeout, retries, kind) = match a {
            RawAlert::Webhook {
                name,
                url,
                headers,
                timeout,
                retries,
            } => {
                let url = self.url(&format!("{path}.url"), &url);
                let mut hs = Vec::new();
                for (k, v) in &headers {
                    if let Some(v) = self.string(&format!("{path}.headers.{k}"), v) {
                        hs.push((k.clone(), Secret::new(v)));
                    }
                }
                (
                    name,
                    timeout,
                    retries,
                    url.map(|url| AlertKind::Webhook { url, headers: hs }),
                )
            }
            RawAlert::Slack {
                name,
                webhook_url,
                timeout,
                retries,
            } => {
                let url = self.url(&format!("{path}.webhook_url"), &webhook_url);
                (
                    name,
                    timeout,
                    retries,
                    url.map(|webhook_url| AlertKind::Slack { webhook_url }),
                )
            }
            RawAlert::Pagerduty {
                name,
                routing_key,
                events_url,
                timeout,
                retries,
            } => {
                let key = self.string(&format!("{path}.routing_key"), &routing_key);
                if key.as_deref().is_some_and(str::is_empty) {
                    self.err(format!("{path}.routing_key"), "must not be empty");
                }
                let events = self.url(
                    &format!("{path}.events_url"),
                    events_url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL),
                );
                let kind = match (key, events) {
                    (Some(k), Some(events_url)) => Some(AlertKind::PagerDuty {
                        routing_key: Secret::new(k),
                        events_url,
                    }),
                    _ => None,
                };
                (name, timeout, retries, kind)
            }
        };
        let timeout = self.duration(
            &format!("{path}.timeout"),
            timeout.as_deref(),
            DEFAULT_ALERT_TIMEOUT,
            Duration::from_millis(100),
        );
        if let Some(n) = &name {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                self.err(
                    format!("{path}.name"),
                    "must be 1-64 characters of A-Z a-z 0-9 . _ -",
                );
            }
        }
        Some(AlertConfig {
            name: name.unwrap_or_default(),
            kind: kind?,
            timeout,
            retries: retries.unwrap_or(DEFAULT_ALERT_RETRIES).min(10),
        })
    }
}

#[cfg(test)]
mod tests;
