//! Monitor configuration, the same recipe as the gateway's: [`Config::from_yaml_with`] parses the file (serde
//! types in `config/raw.rs`, `deny_unknown_fields`), lays the [`Overrides`] from flags and `LIFELINE_*` variables
//! on top (precedence: defaults < file < environment < flags), and `config/validate.rs` expands `${ENV}` and
//! validates into the typed values here, collecting every problem with its field path, e.g.
//! `targets[3].interval: must be at least 5s`. The typed [`Config`] is `Serialize` as the effective
//! configuration that `--check-config` prints and the start-up log carries, secrets redacted by type
//! ([`Secret`]) and secret-bearing URLs cut to their origin.
//!
//! Adding a setting: a field in `RawConfig` (or, for a per-target setting, one line in `raw.rs`'s
//! `probe_settings!`), its check in `validate.rs`, and its
//! typed field here (with its serde form); one more field in [`Overrides`] if it also gets a flag.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::config::ser;
use lifeline_core::LogFormat;
use lifeline_mcp::probe::{
    ClientAuth, CredentialExpiry, OAuthClient, ProbeOptions, Secret, SecretSource, Target,
    Timeouts, ToolCall,
};
use serde::{Serialize, Serializer};
use url::Url;

mod auth;
mod expand;
mod raw;
mod regions;
mod validate;

pub use lifeline_core::config::{ConfigError, FieldError};
pub use raw::Overrides;
pub use regions::{AgentConfig, QuorumConfig, TargetRegions, MAX_AGENT_TOKENS};

use raw::RawConfig;
use validate::Validator;

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
/// Most retries of one alert send; a larger `retries` is lowered to this.
pub const MAX_ALERT_RETRIES: u32 = 10;
/// Smallest probe (and alert send) timeout accepted: 100 ms.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Smallest `slow_after` accepted: 1 ms.
pub const MIN_SLOW_AFTER: Duration = Duration::from_millis(1);
/// Smallest `reminder_interval` accepted: 60 s.
pub const MIN_REMINDER_INTERVAL: Duration = Duration::from_secs(60);
/// The `reminder_interval` kept when the one given is invalid (validation fails anyway): 1 h.
const DEFAULT_REMINDER_INTERVAL: Duration = Duration::from_secs(3600);
/// Smallest raw-result retention accepted: 2 h (rollups need the last complete hour).
pub const MIN_RETENTION_RAW: Duration = Duration::from_secs(2 * 3600);
/// Smallest hourly and daily retention accepted: 1 day.
pub const MIN_RETENTION_ROLLUPS: Duration = Duration::from_secs(86400);
/// Smallest (and fallback) maintenance window length: 60 s.
pub const MIN_MAINTENANCE_DURATION: Duration = Duration::from_secs(60);
/// PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Opsgenie Alert API base URL (the EU instance is `https://api.eu.opsgenie.com`).
pub const OPSGENIE_API_URL: &str = "https://api.opsgenie.com";
/// Default Opsgenie priority of a created alert: `P1` (critical).
pub const DEFAULT_OPSGENIE_PRIORITY: &str = "P1";
/// Default period at which firing alerts are re-sent to Alertmanager: 1 min (Prometheus's
/// `--rules.alert.resend-delay` default; Alertmanager's "Sending alerts" asks for 30 s to 3 min).
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// Smallest `resend_interval` accepted: 5 s.
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_secs(5);
/// Largest `ca_file` an email provider reads: 1 MiB.
pub const MAX_CA_FILE_BYTES: u64 = 1 << 20;
/// The `alertname` label of the alerts sent to Alertmanager, unless `labels:` overrides it.
pub const ALERTMANAGER_ALERTNAME: &str = "LifelineTargetDown";

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://…`. Default [`DEFAULT_STORAGE`]. Serialized with the
    /// password left out.
    #[serde(serialize_with = "storage_redacted")]
    pub storage: String,
    /// Where the status page, API and metrics listen. Default [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// Status page title. Default `MCP status`.
    pub title: String,
    /// Probes in flight at once. Default [`DEFAULT_MAX_CONCURRENCY`].
    pub max_concurrency: NonZeroU32,
    /// Retention per kind of row.
    pub retention: Retention,
    /// The grace periods of the shutdown phases (file block `shutdown:`; see [`crate::Lifecycle`]).
    pub shutdown: crate::Lifecycle,
    /// The targets, names unique.
    pub targets: Vec<TargetConfig>,
    /// Alert providers, names unique.
    pub alerts: Vec<AlertConfig>,
    /// Maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Probe agents in other regions (`agents:`), names unique; see `docs/monitor-ha.md` §Regions.
    pub agents: Vec<AgentConfig>,
    /// Log format on stderr (`log_format: text` or `json`, or `--log-format`). Default text.
    pub log_format: LogFormat,
    /// Internal periods; not in the file (tests shorten them).
    #[serde(skip)]
    pub tuning: Tuning,
}

/// How long rows are kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// Raw results (every result until its hour is rolled up, then its failures and changes: the rollup thins
    /// healthy repeats) and the hourly phase means. Default [`DEFAULT_RETENTION_RAW`]; at least 2 h (rollups
    /// need the last complete hour).
    #[serde(serialize_with = "ser::duration")]
    pub raw: Duration,
    /// Hourly buckets inside the daily rows. Default [`DEFAULT_RETENTION_HOURLY`].
    #[serde(serialize_with = "ser::duration")]
    pub hourly: Duration,
    /// Daily rollups, incidents, events and sent alerts. Default [`DEFAULT_RETENTION_DAILY`].
    #[serde(serialize_with = "ser::duration")]
    pub daily: Duration,
}

/// Smallest `replicas.lease_ttl`: 1 s (a renewal every third of it must still fit a database round trip).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

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
    /// Shard lease time-to-live (renewed every third of it; a replica stops probing a shard 4/5 of it after its
    /// last renewal was sent). `replicas.lease_ttl` in the file, at least [`MIN_LEASE_TTL`]. Default 15 s.
    pub lease_ttl: Duration,
    /// How often the alert outbox is polled. Default 1 s.
    pub dispatch_poll: Duration,
    /// Backoff before the first alert retry (doubling). Default 500 ms.
    pub alert_backoff: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            snapshot_refresh: Duration::from_secs(5),
            uptime_refresh: Duration::from_secs(60),
            rollup_every: Duration::from_secs(60),
            rollup_grace: Duration::from_secs(120),
            flush_every: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(15),
            dispatch_poll: Duration::from_secs(1),
            alert_backoff: Duration::from_millis(500),
        }
    }
}

/// One monitored endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct TargetConfig {
    /// Unique name: 1–64 of `A-Z a-z 0-9 . _ -`; used in URLs, metrics and alerts.
    pub name: String,
    /// The MCP endpoint (`http` or `https`). Serialized without user info, query or fragment.
    #[serde(serialize_with = "url_redacted")]
    pub url: Url,
    /// Extra request headers; values are secrets (never logged).
    #[serde(serialize_with = "header_map")]
    pub headers: Vec<(String, Secret)>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    /// The `auth:` block: an OAuth client and credential expiry dates; `None` when not written.
    pub auth: Option<TargetAuth>,
    /// Opt-in `tools/call` after `tools/list`; side effects are the user's choice. Serialized as the tool name.
    #[serde(serialize_with = "tool_name")]
    pub call: Option<ToolCall>,
    /// Probe interval. Default [`DEFAULT_INTERVAL`], at least [`MIN_INTERVAL`].
    #[serde(serialize_with = "ser::duration")]
    pub interval: Duration,
    /// Whole-probe timeout. Default [`DEFAULT_TIMEOUT`].
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
    /// Consecutive failures that open an incident. Default [`DEFAULT_FAILURE_THRESHOLD`].
    pub failure_threshold: NonZeroU32,
    /// Consecutive successes that resolve it. Default [`DEFAULT_SUCCESS_THRESHOLD`].
    pub success_threshold: NonZeroU32,
    /// Re-alert an open incident at most this often; `None` (the default) sends no reminders.
    #[serde(serialize_with = "opt_duration")]
    pub reminder_interval: Option<Duration>,
    /// Certificate warning window for the verdict (`cert_expiring`). Default 14 days.
    pub cert_warning_days: i64,
    /// A probe slower than this is `degraded` (`slow`). Default 5 s.
    #[serde(serialize_with = "ser::duration")]
    pub slow_after: Duration,
    /// Count `auth_required` as up (a public endpoint monitored without credentials). Default false.
    pub accept_auth_required: bool,
    /// Set on a *transaction target*: one of a configured target's `transactions`, scheduled, stored, rolled up
    /// and alerted on as a target of its own named `<target>.<transaction>` (see [`TransactionJob`]). `None` for
    /// the configured targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionJob>,
    /// `regions:` and `quorum:`: the regions whose agents probe this target and the rule that turns a round
    /// of their results into a verdict. `None` (the default) when no regions are written: probed locally only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<TargetRegions>,
}

/// What makes a [`TargetConfig`] a transaction target: its parent and the one transaction it runs (with the
/// parent's safety gate). Its probe is the parent's probe (same URL and credentials) plus that transaction; its
/// verdict is the transaction's (see `crate::prober::transaction_view`).
#[derive(Debug, Clone, Serialize)]
pub struct TransactionJob {
    /// The configured target's name.
    pub parent: String,
    /// The transaction's name.
    pub name: String,
    /// The parent's `allow_tools` and `allow_side_effects` with this one transaction.
    pub set: std::sync::Arc<lifeline_mcp::transaction::TransactionSet>,
}

impl TargetConfig {
    /// A target with every default, named `name`.
    pub fn new(name: impl Into<String>, url: Url) -> Self {
        TargetConfig {
            name: name.into(),
            url,
            headers: Vec::new(),
            bearer_token: None,
            auth: None,
            call: None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            failure_threshold: nz(DEFAULT_FAILURE_THRESHOLD),
            success_threshold: nz(DEFAULT_SUCCESS_THRESHOLD),
            reminder_interval: None,
            cert_warning_days: lifeline_mcp::probe::config::DEFAULT_CERT_WARNING_DAYS,
            slow_after: lifeline_mcp::probe::config::DEFAULT_SLOW_AFTER,
            accept_auth_required: false,
            transaction: None,
            regions: None,
        }
    }

    /// The name maintenance windows know this target by: a transaction target follows its parent's.
    pub fn maintenance_name(&self) -> &str {
        self.transaction.as_ref().map_or(&self.name, |j| &j.parent)
    }

    /// The probe target.
    pub fn probe_target(&self) -> Target {
        Target::Http(self.url.clone())
    }

    /// The probe options for this target.
    pub fn probe_options(&self) -> ProbeOptions {
        let (oauth, credential_expiry, credential_warning_days) = match &self.auth {
            Some(a) => (a.oauth.clone(), a.expiry.clone(), a.warning_days),
            None => (
                None,
                Vec::new(),
                lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS,
            ),
        };
        ProbeOptions {
            oauth,
            credential_expiry,
            credential_warning_days,
            timeouts: Timeouts {
                total: self.timeout,
                ..Timeouts::default()
            },
            headers: self.headers.clone(),
            bearer_token: self.bearer_token.clone(),
            call: self.call.clone(),
            transactions: self.transaction.as_ref().map(|j| j.set.clone()),
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

/// A target's `auth:` block, validated. The OAuth client lives here so its token cache lasts as long as the
/// configuration: every probe of the target (and of any other target written with the same credential, which
/// shares the client and so its one-refresh-at-a-time) reuses the token until it nears its expiry.
#[derive(Debug, Clone)]
pub struct TargetAuth {
    /// The OAuth client; `None` when the block only dates a static credential (`api_key_expires_at`).
    pub oauth: Option<Arc<OAuthClient>>,
    /// The configured expiry dates.
    pub expiry: Vec<CredentialExpiry>,
    /// The warning window in days. Default 7 (`lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS`).
    pub warning_days: i64,
}

impl Serialize for TargetAuth {
    /// The effective `auth:` block with every secret left out: the client id, method, scope and token URL, which
    /// secret sources are set (a file path, or `<redacted>` for a value), and the expiry dates (Unix seconds).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let source = |src: &SecretSource| match src {
            SecretSource::File(p) => format!("file {}", p.display()),
            SecretSource::Value(_) => lifeline_core::secret::REDACTED.to_owned(),
        };
        let mut m = s.serialize_map(None)?;
        if let Some(client) = &self.oauth {
            let c = client.config();
            m.serialize_entry("client_id", &c.client_id)?;
            m.serialize_entry("auth_method", c.auth.method_name())?;
            match &c.auth {
                ClientAuth::SecretBasic(src) | ClientAuth::SecretPost(src) => {
                    m.serialize_entry("client_secret", &source(src))?;
                }
                ClientAuth::PrivateKeyJwt { key, key_id } => {
                    m.serialize_entry("private_key", &source(key))?;
                    m.serialize_entry("key_id", key_id)?;
                }
                ClientAuth::None => {}
            }
            if let Some(rt) = &c.refresh_token {
                m.serialize_entry("refresh_token", &source(rt))?;
            }
            m.serialize_entry("scope", &c.scope)?;
            m.serialize_entry("token_url", &c.token_url.as_ref().map(Url::as_str))?;
        }
        for e in &self.expiry {
            m.serialize_entry(
                &format!("{}_expires_at", e.kind.as_str()),
                &e.expires_at_unix,
            )?;
        }
        m.serialize_entry("warning_days", &self.warning_days)?;
        m.end()
    }
}

/// An alert provider.
#[derive(Debug, Clone, Serialize)]
pub struct AlertConfig {
    /// Unique name, default the type (`webhook`, `slack`, `email`, …, then `-2`, `-3` for repeats). Pending
    /// sends are stored under it, so keep it stable across restarts.
    pub name: String,
    /// Where and how to send (serialized as `type` and the provider's settings).
    #[serde(flatten)]
    pub kind: AlertKind,
    /// Timeout of one attempt. Default [`DEFAULT_ALERT_TIMEOUT`].
    #[serde(serialize_with = "ser::duration")]
    pub timeout: Duration,
    /// Retries after a failed attempt. Default [`DEFAULT_ALERT_RETRIES`].
    pub retries: u32,
}

/// The provider and its settings. Serialized with `type` (`webhook`, `slack`, `pagerduty`, …) as in the file,
/// secret URLs cut to their origin and secret values as `<redacted>`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertKind {
    /// POST the JSON body of `docs/alerting.md` to `url` with `headers`.
    Webhook {
        /// Target URL (secret: may embed a token).
        #[serde(serialize_with = "secret_url")]
        url: Url,
        /// Extra headers (values secret).
        #[serde(serialize_with = "header_map")]
        headers: Vec<(String, Secret)>,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret).
        #[serde(serialize_with = "secret_url")]
        webhook_url: Url,
    },
    /// PagerDuty Events API v2.
    #[serde(rename = "pagerduty")]
    PagerDuty {
        /// The integration's routing key (a secret).
        routing_key: Secret,
        /// Events endpoint, default [`PAGERDUTY_EVENTS_URL`].
        #[serde(serialize_with = "ser::display")]
        events_url: Url,
    },
    /// Prometheus Alertmanager, API v2 (`POST <url>/api/v2/alerts`); firing alerts are re-sent every
    /// `resend_interval` while the incident is open (see `alert/alertmanager.rs`).
    Alertmanager {
        /// Base URL of one Alertmanager, e.g. `http://alertmanager:9093` (with any path prefix it is served under).
        #[serde(serialize_with = "url_redacted")]
        url: Url,
        /// Extra headers, e.g. `Authorization` for a proxy in front of it (values secret).
        #[serde(serialize_with = "header_map")]
        headers: Vec<(String, Secret)>,
        /// Extra labels on every alert; they override the built-in ones (`alertname`, `target`, `reason`,
        /// `severity`). Names match `[a-zA-Z_][a-zA-Z0-9_]*`.
        labels: BTreeMap<String, String>,
        /// Re-send period of firing alerts. Default [`DEFAULT_RESEND_INTERVAL`], at least [`MIN_RESEND_INTERVAL`].
        #[serde(serialize_with = "ser::duration")]
        resend_interval: Duration,
    },
    /// A Microsoft Teams workflow webhook ("Post to a channel when a webhook request is received") with an
    /// Adaptive Card.
    Teams {
        /// The workflow's URL (a secret: it carries its signature).
        #[serde(serialize_with = "secret_url")]
        webhook_url: Url,
    },
    /// A Discord channel webhook (`content` and one embed).
    Discord {
        /// The webhook URL (a secret: it carries its token).
        #[serde(serialize_with = "secret_url")]
        webhook_url: Url,
    },
    /// Opsgenie Alert API v2: create on open, close on resolve, `alias` = the incident's dedup key.
    Opsgenie {
        /// The API integration's key, sent as `Authorization: GenieKey <key>` (a secret).
        api_key: Secret,
        /// API base URL, default [`OPSGENIE_API_URL`].
        #[serde(serialize_with = "ser::display")]
        api_url: Url,
        /// `P1` (critical) to `P5`. Default [`DEFAULT_OPSGENIE_PRIORITY`].
        priority: String,
    },
    /// Email over SMTP (RFC 5321), with STARTTLS (RFC 3207) or implicit TLS (RFC 8314).
    Email(EmailSettings),
}

/// The SMTP server and the message envelope of an `email` provider.
#[derive(Debug, Clone, Serialize)]
pub struct EmailSettings {
    /// The SMTP server's host name (also the name its certificate is checked against).
    pub host: String,
    /// Its port. Default by `tls`: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: u16,
    /// How the connection is secured. Default [`SmtpTls::Starttls`].
    pub tls: SmtpTls,
    /// A PEM file of CA certificates trusted besides the Mozilla roots (a relay with a private CA). Read at
    /// each send, so a rotated bundle is picked up; at most [`MAX_CA_FILE_BYTES`].
    pub ca_file: Option<std::path::PathBuf>,
    /// SMTP AUTH user name; set together with `password`.
    pub username: Option<String>,
    /// SMTP AUTH password (a secret).
    pub password: Option<Secret>,
    /// The `From:` mailbox, e.g. `Lifeline <alerts@example.com>`.
    #[serde(serialize_with = "ser::display")]
    pub from: lettre::message::Mailbox,
    /// The recipients (`To:`), at least one.
    #[serde(serialize_with = "mailboxes")]
    pub to: Vec<lettre::message::Mailbox>,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS` (RFC 3207), which the server must offer. Port 587.
    Starttls,
    /// TLS from the first byte (RFC 8314 "implicit TLS"). Port 465.
    Tls,
    /// No TLS at all: only for a relay on loopback or a trusted network. Port 25.
    None,
}

impl SmtpTls {
    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

impl fmt::Debug for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

impl AlertKind {
    /// `webhook`, `slack`, `pagerduty`, `alertmanager`, `teams`, `discord`, `opsgenie` or `email`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AlertKind::Webhook { .. } => "webhook",
            AlertKind::Slack { .. } => "slack",
            AlertKind::PagerDuty { .. } => "pagerduty",
            AlertKind::Alertmanager { .. } => "alertmanager",
            AlertKind::Teams { .. } => "teams",
            AlertKind::Discord { .. } => "discord",
            AlertKind::Opsgenie { .. } => "opsgenie",
            AlertKind::Email(_) => "email",
        }
    }

    /// Whether reminders are queued for this provider. Not for those that track the incident themselves:
    /// PagerDuty and Opsgenie escalate on their own (and would dedup a repeat anyway), Alertmanager gets
    /// its periodic re-sends instead and repeats notifications by its own `repeat_interval`.
    pub fn takes_reminders(&self) -> bool {
        !matches!(
            self,
            AlertKind::PagerDuty { .. }
                | AlertKind::Opsgenie { .. }
                | AlertKind::Alertmanager { .. }
        )
    }
}

/// A recurring maintenance window: no incident opens and no alert is sent while one covers a target.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceWindow {
    /// Target names; `None` covers every target.
    pub targets: Option<Vec<String>>,
    /// The cron expression as written (UTC; 5 fields, or 6–7 with seconds).
    pub cron: String,
    /// Parsed schedule of window starts.
    #[serde(skip)]
    pub schedule: cron::Schedule,
    /// Window length.
    #[serde(serialize_with = "ser::duration")]
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

impl Config {
    /// Parses and validates YAML. `env` looks up `${NAME}` references (the binary passes the process
    /// environment). Every problem is reported with its field path.
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::from_yaml_with(text, env, &Overrides::default())
    }

    /// [`Config::from_yaml`] with the flags and `LIFELINE_*` variables laid over the file before validation,
    /// so their errors name the field too (`listen: …`).
    pub fn from_yaml_with(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut raw: RawConfig = if text.trim().is_empty() {
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
        overrides.apply(&mut raw);
        Validator {
            env,
            errors: Vec::new(),
            oauth_clients: Vec::new(),
        }
        .config(raw)
    }

    /// The quick start: one target per URL (named after its host), every default.
    pub fn quick_start(urls: &[Url]) -> Result<Config, ConfigError> {
        Config::quick_start_with(urls, &Overrides::default())
    }

    /// [`Config::quick_start`] with the flags and `LIFELINE_*` variables applied.
    pub fn quick_start_with(urls: &[Url], overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = Config::from_yaml_with("", &|_| None, overrides)?;
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

fn storage_redacted<S: Serializer>(storage: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_storage(storage))
}

fn url_redacted<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// A URL that is itself a secret (a webhook's path is its token): only the origin is shown.
fn secret_url<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{}/{}",
        url.origin().ascii_serialization(),
        lifeline_core::secret::REDACTED
    ))
}

fn mailboxes<S: Serializer>(to: &[lettre::message::Mailbox], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(to.iter().map(ToString::to_string))
}

fn header_map<S: Serializer>(headers: &[(String, Secret)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(headers.iter().map(|(k, v)| (k, v)))
}

fn tool_name<S: Serializer>(call: &Option<ToolCall>, s: S) -> Result<S::Ok, S::Error> {
    match call {
        Some(c) => s.serialize_str(&c.name),
        None => s.serialize_none(),
    }
}

fn opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser::duration(d, s),
        None => s.serialize_none(),
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests;
