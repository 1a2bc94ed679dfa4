//! The configuration file as written: serde types with `deny_unknown_fields`, strings unexpanded. See
//! [`crate::config`] for the typed form and `docs/monitor.md` §Configuration for every field.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The settings that flags and `LIFELINE_*` variables can set; each wins over the file's key of the same name
/// (precedence: defaults < file < environment < flags, the last two sorted out by clap). The binary flattens
/// this into `lifeline monitor`'s arguments.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct Overrides {
    /// Override `listen` (status page, API, metrics), e.g. 0.0.0.0:8080. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "LIFELINE_LISTEN")]
    pub listen: Option<String>,
    /// Override `storage` (`sqlite://PATH` or `postgres://…`). [default: sqlite://lifeline.db]
    #[arg(long, value_name = "URL", env = "LIFELINE_STORAGE")]
    pub storage: Option<String>,
    /// Log format on stderr: text or json (overrides `log_format`). [default: text]
    #[arg(long, value_name = "FORMAT", env = "LIFELINE_LOG_FORMAT")]
    pub log_format: Option<String>,
}

impl Overrides {
    /// Lays the set overrides over the file's raw values. A flag's value is taken literally: the `$` of a
    /// storage URL (the one overridable value that gets `${ENV}` expansion, meant for the file) is escaped.
    pub(crate) fn apply(&self, raw: &mut RawConfig) {
        if let Some(listen) = &self.listen {
            raw.listen = Some(listen.clone());
        }
        if let Some(storage) = &self.storage {
            raw.storage = Some(storage.replace('$', "$$"));
        }
        if let Some(format) = &self.log_format {
            raw.log_format = Some(format.clone());
        }
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) storage: Option<String>,
    pub(crate) listen: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) max_concurrency: Option<u32>,
    pub(crate) log_format: Option<String>,
    #[serde(default)]
    pub(crate) defaults: RawProbeSettings,
    #[serde(default)]
    pub(crate) retention: RawRetention,
    #[serde(default)]
    pub(crate) shutdown: RawShutdown,
    #[serde(default)]
    pub(crate) replicas: RawReplicas,
    #[serde(default)]
    pub(crate) targets: Vec<RawTarget>,
    #[serde(default)]
    pub(crate) alerts: Vec<RawAlert>,
    #[serde(default)]
    pub(crate) maintenance: Vec<RawMaintenance>,
    /// Probe agents in other regions (`config/regions.rs`).
    #[serde(default)]
    pub(crate) agents: Vec<super::regions::RawAgent>,
}

/// How long each kind of row is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    pub(crate) raw: Option<String>,
    pub(crate) hourly: Option<String>,
    pub(crate) daily: Option<String>,
}

/// Replicas sharing one PostgreSQL (issue 14, `docs/monitor-ha.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplicas {
    pub(crate) lease_ttl: Option<String>,
}

/// The grace periods of the shutdown phases (see `crate::Lifecycle`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShutdown {
    pub(crate) drain_delay: Option<String>,
    pub(crate) probe_grace: Option<String>,
    pub(crate) alert_grace: Option<String>,
    pub(crate) web_grace: Option<String>,
}

/// Declares the probe settings once for the two places that take them: `defaults:` ([`RawProbeSettings`]) and
/// each entry of `targets:` ([`RawTarget`], which overrides the defaults key by key). A macro, not
/// `#[serde(flatten)]`, because flatten turns `deny_unknown_fields` off for the flattened fields
/// (serde-rs/serde#1600), and a misspelt `intervall:` must stay an error.
macro_rules! probe_settings {
    ($($field:ident: $ty:ty,)*) => {
        /// The per-target probe settings, each unset unless written: under `defaults:` every target inherits
        /// them; see `docs/monitor.md` §Configuration for units and defaults.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawProbeSettings {
            $(pub(crate) $field: Option<$ty>,)*
        }

        /// One monitored endpoint: its identity and credentials, then the probe settings it overrides.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawTarget {
            pub(crate) name: String,
            pub(crate) url: String,
            #[serde(default)]
            pub(crate) headers: BTreeMap<String, String>,
            pub(crate) bearer_token: Option<String>,
            pub(crate) auth: Option<RawAuth>,
            pub(crate) call: Option<RawCall>,
            /// The synthetic transactions' safety gate and scripts (`lifeline_mcp::transaction`).
            #[serde(default)]
            pub(crate) allow_tools: Vec<String>,
            #[serde(default)]
            pub(crate) allow_side_effects: bool,
            #[serde(default)]
            pub(crate) transactions: Vec<lifeline_mcp::transaction::RawTransaction>,
            /// The regions probing it and their quorum rule (`config/regions.rs`).
            #[serde(default)]
            pub(crate) regions: Vec<String>,
            pub(crate) quorum: Option<super::regions::RawQuorum>,
            $(pub(crate) $field: Option<$ty>,)*
        }

        impl RawTarget {
            /// The transaction keys this target writes, moved out of it.
            pub(crate) fn take_transactions(&mut self) -> lifeline_mcp::transaction::RawTransactionSet {
                lifeline_mcp::transaction::RawTransactionSet {
                    allow_tools: std::mem::take(&mut self.allow_tools),
                    allow_side_effects: self.allow_side_effects,
                    transactions: std::mem::take(&mut self.transactions),
                }
            }

            /// The probe settings this target writes, moved out of it.
            pub(crate) fn take_settings(&mut self) -> RawProbeSettings {
                RawProbeSettings {
                    $($field: self.$field.take(),)*
                }
            }
        }
    };
}

probe_settings! {
    interval: String,
    timeout: String,
    failure_threshold: u32,
    success_threshold: u32,
    reminder_interval: String,
    cert_warning_days: i64,
    slow_after: String,
    accept_auth_required: bool,
}

/// A target's `auth:` block: the OAuth client (client credentials or refresh token) and the expiry dates of its
/// credentials; see `docs/monitor.md` §Authenticated probes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) client_secret_file: Option<String>,
    pub(crate) auth_method: Option<String>,
    pub(crate) private_key_file: Option<String>,
    pub(crate) key_id: Option<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) refresh_token_file: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) client_secret_expires_at: Option<String>,
    pub(crate) api_key_expires_at: Option<String>,
    pub(crate) refresh_token_issued_at: Option<String>,
    pub(crate) refresh_token_max_age: Option<String>,
    pub(crate) warning_days: Option<i64>,
}

/// The opt-in tool call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCall {
    pub(crate) tool: String,
    #[serde(default)]
    pub(crate) args: Option<Value>,
}

/// One alert provider.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawAlert {
    Webhook {
        name: Option<String>,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Slack {
        name: Option<String>,
        webhook_url: String,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Pagerduty {
        name: Option<String>,
        routing_key: String,
        events_url: Option<String>,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Alertmanager {
        name: Option<String>,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        resend_interval: Option<String>,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Teams {
        name: Option<String>,
        webhook_url: String,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Discord {
        name: Option<String>,
        webhook_url: String,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Opsgenie {
        name: Option<String>,
        api_key: String,
        api_url: Option<String>,
        priority: Option<String>,
        timeout: Option<String>,
        retries: Option<u32>,
    },
    Email {
        name: Option<String>,
        host: String,
        port: Option<u16>,
        tls: Option<String>,
        ca_file: Option<String>,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
        timeout: Option<String>,
        retries: Option<u32>,
    },
}

/// A recurring maintenance window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaintenance {
    #[serde(default)]
    pub(crate) targets: Option<Vec<String>>,
    pub(crate) cron: String,
    pub(crate) duration: String,
}
