//! The monitor's validation: [`Validator`] expands `${ENV}` references, applies defaults and checks every
//! field, collecting every problem with its field path (`targets[3].interval: must be at least 5s`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use lifeline_core::config::FieldError;
use lifeline_core::LogFormat;
use lifeline_mcp::probe::{Secret, ToolCall};
use url::Url;

use super::raw::{RawAlert, RawConfig, RawProbeSettings, RawTarget};
use super::*;
use crate::Lifecycle;

pub(super) struct Validator<'a> {
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) errors: Vec<FieldError>,
    /// The OAuth clients made so far, by credential: targets written with the same credential share one (see
    /// `config/auth.rs`).
    pub(super) oauth_clients: Vec<(
        super::auth::CredentialKey,
        std::sync::Arc<lifeline_mcp::probe::OAuthClient>,
    )>,
}

impl Validator<'_> {
    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn string(&mut self, path: &str, value: &str) -> Option<String> {
        match super::expand::expand(value, self.env) {
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

    pub(super) fn url(&mut self, path: &str, value: &str) -> Option<Url> {
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

    pub(super) fn config(mut self, raw: RawConfig) -> Result<Config, ConfigError> {
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
        // The built-in defaults, overridden by `defaults:`, then by each target.
        let mut base = TargetConfig::new(
            "",
            Url::parse("http://127.0.0.1/").expect("a literal URL parses"),
        );
        self.probe_settings("defaults", d, &mut base);

        let retention = Retention {
            raw: self.duration(
                "retention.raw",
                raw.retention.raw.as_deref(),
                DEFAULT_RETENTION_RAW,
                MIN_RETENTION_RAW,
            ),
            hourly: self.duration(
                "retention.hourly",
                raw.retention.hourly.as_deref(),
                DEFAULT_RETENTION_HOURLY,
                MIN_RETENTION_ROLLUPS,
            ),
            daily: self.duration(
                "retention.daily",
                raw.retention.daily.as_deref(),
                DEFAULT_RETENTION_DAILY,
                MIN_RETENTION_ROLLUPS,
            ),
        };

        let shutdown = Lifecycle {
            drain_delay: self.duration(
                "shutdown.drain_delay",
                raw.shutdown.drain_delay.as_deref(),
                crate::lifecycle::DEFAULT_DRAIN_DELAY,
                Duration::ZERO,
            ),
            probe_grace: self.duration(
                "shutdown.probe_grace",
                raw.shutdown.probe_grace.as_deref(),
                crate::lifecycle::DEFAULT_PROBE_GRACE,
                Duration::ZERO,
            ),
            alert_grace: self.duration(
                "shutdown.alert_grace",
                raw.shutdown.alert_grace.as_deref(),
                crate::lifecycle::DEFAULT_ALERT_GRACE,
                Duration::ZERO,
            ),
            web_grace: self.duration(
                "shutdown.web_grace",
                raw.shutdown.web_grace.as_deref(),
                crate::lifecycle::DEFAULT_WEB_GRACE,
                Duration::ZERO,
            ),
        };

        let tuning = Tuning {
            lease_ttl: self.duration(
                "replicas.lease_ttl",
                raw.replicas.lease_ttl.as_deref(),
                Tuning::default().lease_ttl,
                MIN_LEASE_TTL,
            ),
            ..Tuning::default()
        };

        let agents = self.agents(raw.agents);
        let mut targets = Vec::with_capacity(raw.targets.len());
        let mut transaction_targets = Vec::new();
        for (i, mut t) in raw.targets.into_iter().enumerate() {
            let scripts = t.take_transactions();
            if let Some(t) = self.target(&format!("targets[{i}]"), t, &base) {
                self.regions_have_agents(&format!("targets[{i}]"), &t, &agents);
                if targets.iter().any(|o: &TargetConfig| o.name == t.name) {
                    self.err(
                        format!("targets[{i}].name"),
                        format!("`{}` is used by another target", t.name),
                    );
                }
                transaction_targets.extend(self.transactions(i, &t, &scripts));
                targets.push(t);
            }
        }
        // After every configured target, so their indexes (and the scheduler's order) stay as written.
        for (i, j, t) in transaction_targets {
            if targets.iter().any(|o: &TargetConfig| o.name == t.name) {
                self.err(
                    format!("targets[{i}].transactions[{j}].name"),
                    format!("`{}` is used by another target", t.name),
                );
            }
            targets.push(t);
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
                MIN_MAINTENANCE_DURATION,
                MIN_MAINTENANCE_DURATION,
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

        let log_format = raw
            .log_format
            .as_deref()
            .and_then(|f| match f.parse::<LogFormat>() {
                Ok(f) => Some(f),
                Err(m) => {
                    self.err("log_format", m);
                    None
                }
            })
            .unwrap_or_default();

        if self.errors.is_empty() {
            Ok(Config {
                storage,
                listen,
                title: raw.title.unwrap_or_else(|| "MCP status".to_owned()),
                max_concurrency,
                retention,
                shutdown,
                targets,
                alerts,
                maintenance,
                agents,
                log_format,
                tuning,
            })
        } else {
            Err(ConfigError(self.errors))
        }
    }

    /// Lays the probe settings written at `path` (`defaults` or `targets[i]`) over `out`, each checked
    /// against its floor; an unset one keeps `out`'s value.
    fn probe_settings(&mut self, path: &str, raw: &RawProbeSettings, out: &mut TargetConfig) {
        out.interval = self.duration(
            &format!("{path}.interval"),
            raw.interval.as_deref(),
            out.interval,
            MIN_INTERVAL,
        );
        out.timeout = self.duration(
            &format!("{path}.timeout"),
            raw.timeout.as_deref(),
            out.timeout,
            MIN_TIMEOUT,
        );
        out.failure_threshold = self.threshold(
            &format!("{path}.failure_threshold"),
            raw.failure_threshold,
            out.failure_threshold,
        );
        out.success_threshold = self.threshold(
            &format!("{path}.success_threshold"),
            raw.success_threshold,
            out.success_threshold,
        );
        if let Some(r) = raw.reminder_interval.as_deref() {
            out.reminder_interval = Some(self.duration(
                &format!("{path}.reminder_interval"),
                Some(r),
                DEFAULT_REMINDER_INTERVAL,
                MIN_REMINDER_INTERVAL,
            ));
        }
        out.slow_after = self.duration(
            &format!("{path}.slow_after"),
            raw.slow_after.as_deref(),
            out.slow_after,
            MIN_SLOW_AFTER,
        );
        if let Some(days) = raw.cert_warning_days {
            out.cert_warning_days = days;
        }
        if let Some(accept) = raw.accept_auth_required {
            out.accept_auth_required = accept;
        }
    }

    fn target(
        &mut self,
        path: &str,
        mut t: RawTarget,
        base: &TargetConfig,
    ) -> Option<TargetConfig> {
        let settings = t.take_settings();
        let before = self.errors.len();
        let regions = self.target_regions(path, std::mem::take(&mut t.regions), t.quorum.take());
        if !super::regions::is_name(&t.name) {
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
        let auth = t.auth.and_then(|a| self.auth(&format!("{path}.auth"), a));
        let call = t.call.map(|c| ToolCall {
            name: c.tool,
            arguments: c.args.unwrap_or_else(|| serde_json::json!({})),
        });
        let mut out = base.clone();
        out.name = t.name;
        out.headers = headers;
        if auth.as_ref().is_some_and(|a| a.oauth.is_some()) && bearer_token.is_some() {
            self.err(
                format!("{path}.bearer_token"),
                "give either bearer_token or an OAuth client in auth:, not both",
            );
        }
        out.bearer_token = bearer_token;
        out.auth = auth;
        out.call = call;
        out.regions = regions;
        self.probe_settings(path, &settings, &mut out);
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

    /// Validates target `i`'s transactions (`lifeline_mcp::transaction::TransactionSet::validate`, the safety
    /// gate's `allow_tools` half included) into one transaction target each, named `<target>.<transaction>`,
    /// with the transaction's interval (default the target's) and the target's timeout plus the transaction's.
    fn transactions(
        &mut self,
        i: usize,
        parent: &TargetConfig,
        raw: &lifeline_mcp::transaction::RawTransactionSet,
    ) -> Vec<(usize, usize, TargetConfig)> {
        use lifeline_mcp::transaction::TransactionSet;
        let mut errors = lifeline_core::config::FieldErrors::new();
        let set = TransactionSet::validate(raw, &format!("targets[{i}]."), &mut errors);
        if let Err(e) = errors.finish(|| ()) {
            self.errors.extend(e.0);
            return Vec::new();
        }
        let mut out = Vec::with_capacity(set.transactions.len());
        for (j, t) in set.transactions.iter().enumerate() {
            let path = format!("targets[{i}].transactions[{j}]");
            let interval = t.interval.unwrap_or(parent.interval);
            if interval < MIN_INTERVAL {
                self.err(
                    format!("{path}.interval"),
                    format!("must be at least {}", ser::format_duration(MIN_INTERVAL)),
                );
            }
            let timeout = parent.timeout + t.timeout;
            if timeout > interval {
                self.err(
                    format!("{path}.timeout"),
                    format!(
                        "the target's timeout plus the transaction's ({}) must not exceed its interval ({})",
                        ser::format_duration(timeout),
                        ser::format_duration(interval)
                    ),
                );
            }
            let mut target = parent.clone();
            target.name = format!("{}.{}", parent.name, t.name);
            target.interval = interval;
            target.timeout = timeout;
            // The parent's probe already makes the opt-in call; the transaction target runs only its script.
            target.call = None;
            target.transaction = Some(TransactionJob {
                parent: parent.name.clone(),
                name: t.name.clone(),
                set: std::sync::Arc::new(TransactionSet {
                    allow_tools: set.allow_tools.clone(),
                    allow_side_effects: set.allow_side_effects,
                    transactions: vec![t.clone()],
                }),
            });
            out.push((i, j, target));
        }
        out
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
                let hs = self.secret_headers(path, &headers);
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
            RawAlert::Alertmanager {
                name,
                url,
                headers,
                labels,
                resend_interval,
                timeout,
                retries,
            } => {
                let url = self.url(&format!("{path}.url"), &url);
                let headers = self.secret_headers(path, &headers);
                let mut ls = BTreeMap::new();
                for (k, v) in labels {
                    let valid = k
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        self.err(
                            format!("{path}.labels.{k}"),
                            "a label name must match [a-zA-Z_][a-zA-Z0-9_]*",
                        );
                    }
                    if let Some(v) = self.string(&format!("{path}.labels.{k}"), &v) {
                        if v.is_empty() {
                            // Alertmanager treats an empty label value as an absent label.
                            self.err(format!("{path}.labels.{k}"), "must not be empty");
                        }
                        ls.insert(k, v);
                    }
                }
                let resend_interval = self.duration(
                    &format!("{path}.resend_interval"),
                    resend_interval.as_deref(),
                    DEFAULT_RESEND_INTERVAL,
                    MIN_RESEND_INTERVAL,
                );
                (
                    name,
                    timeout,
                    retries,
                    url.map(|url| AlertKind::Alertmanager {
                        url,
                        headers,
                        labels: ls,
                        resend_interval,
                    }),
                )
            }
            RawAlert::Teams {
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
                    url.map(|webhook_url| AlertKind::Teams { webhook_url }),
                )
            }
            RawAlert::Discord {
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
                    url.map(|webhook_url| AlertKind::Discord { webhook_url }),
                )
            }
            RawAlert::Opsgenie {
                name,
                api_key,
                api_url,
                priority,
                timeout,
                retries,
            } => {
                let key = self.string(&format!("{path}.api_key"), &api_key);
                if key.as_deref().is_some_and(str::is_empty) {
                    self.err(format!("{path}.api_key"), "must not be empty");
                }
                let api_url = self.url(
                    &format!("{path}.api_url"),
                    api_url.as_deref().unwrap_or(OPSGENIE_API_URL),
                );
                let priority = priority.unwrap_or_else(|| DEFAULT_OPSGENIE_PRIORITY.to_owned());
                if !matches!(priority.as_str(), "P1" | "P2" | "P3" | "P4" | "P5") {
                    self.err(
                        format!("{path}.priority"),
                        format!("`{priority}` is not one of P1, P2, P3, P4, P5"),
                    );
                }
                let kind = match (key, api_url) {
                    (Some(k), Some(api_url)) => Some(AlertKind::Opsgenie {
                        api_key: Secret::new(k),
                        api_url,
                        priority,
                    }),
                    _ => None,
                };
                (name, timeout, retries, kind)
            }
            RawAlert::Email {
                name,
                host,
                port,
                tls,
                ca_file,
                username,
                password,
                from,
                to,
                timeout,
                retries,
            } => {
                let kind = self
                    .email(
                        path,
                        host,
                        port,
                        (tls, ca_file),
                        (username, password),
                        (&from, &to),
                    )
                    .map(AlertKind::Email);
                (name, timeout, retries, kind)
            }
        };
        let timeout = self.duration(
            &format!("{path}.timeout"),
            timeout.as_deref(),
            DEFAULT_ALERT_TIMEOUT,
            MIN_TIMEOUT,
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
            retries: retries
                .unwrap_or(DEFAULT_ALERT_RETRIES)
                .min(MAX_ALERT_RETRIES),
        })
    }
    /// `headers:` of an alert provider at `path`, each value `${ENV}`-expanded and kept secret.
    fn secret_headers(
        &mut self,
        path: &str,
        headers: &BTreeMap<String, String>,
    ) -> Vec<(String, Secret)> {
        let mut out = Vec::new();
        for (k, v) in headers {
            if let Some(v) = self.string(&format!("{path}.headers.{k}"), v) {
                out.push((k.clone(), Secret::new(v)));
            }
        }
        out
    }

    /// The `email` provider's settings at `path`: server, TLS mode, credentials (both or neither) and the
    /// mailboxes (RFC 5322 `name <addr>` or a bare address).
    fn email(
        &mut self,
        path: &str,
        host: String,
        port: Option<u16>,
        (tls, ca_file): (Option<String>, Option<String>),
        (username, password): (Option<String>, Option<String>),
        (from, to): (&str, &[String]),
    ) -> Option<EmailSettings> {
        let before = self.errors.len();
        let host = self
            .string(&format!("{path}.host"), &host)
            .unwrap_or_default();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            self.err(format!("{path}.host"), "must be a host name or IP address");
        }
        let tls = match tls.as_deref() {
            None | Some("starttls") => SmtpTls::Starttls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(other) => {
                self.err(
                    format!("{path}.tls"),
                    format!("`{other}` is not one of starttls, tls, none"),
                );
                SmtpTls::Starttls
            }
        };
        let ca_file = ca_file
            .and_then(|f| self.string(&format!("{path}.ca_file"), &f))
            .map(std::path::PathBuf::from);
        if ca_file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            self.err(format!("{path}.ca_file"), "must not be empty");
        } else if ca_file.is_some() && tls == SmtpTls::None {
            self.err(
                format!("{path}.ca_file"),
                "needs tls: starttls or tls (with tls: none nothing is verified)",
            );
        }
        if port == Some(0) {
            self.err(format!("{path}.port"), "must be 1-65535");
        }
        let username = username.and_then(|u| self.string(&format!("{path}.username"), &u));
        let password = password
            .and_then(|p| self.string(&format!("{path}.password"), &p))
            .map(Secret::new);
        if username.is_some() != password.is_some() {
            self.err(
                format!("{path}.password"),
                "username and password must be set together",
            );
        }
        let mut mailbox = |field: String, text: &str| -> Option<lettre::message::Mailbox> {
            let text = self.string(&field, text)?;
            match text.parse::<lettre::message::Mailbox>() {
                Ok(m) => Some(m),
                Err(e) => {
                    self.err(
                        field,
                        format!("`{text}` is not a mailbox like \"Name <user@example.com>\" ({e})"),
                    );
                    None
                }
            }
        };
        let from = mailbox(format!("{path}.from"), from);
        let to: Vec<_> = to
            .iter()
            .enumerate()
            .filter_map(|(i, t)| mailbox(format!("{path}.to[{i}]"), t))
            .collect();
        if to.is_empty() && self.errors.len() == before {
            self.err(format!("{path}.to"), "must name at least one recipient");
        }
        if self.errors.len() != before {
            return None;
        }
        Some(EmailSettings {
            host,
            port: port.unwrap_or_else(|| tls.default_port()),
            tls,
            ca_file,
            username,
            password,
            from: from?,
            to,
        })
    }
}
