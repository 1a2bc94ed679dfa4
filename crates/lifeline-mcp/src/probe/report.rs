//! The result of one probe: [`ProbeReport`], serialised as documented in `docs/check-json.md`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

use crate::era::{Era, TransportKind};
use crate::verdict::{Reason, Verdict, Warning};

/// A timed phase of a probe. The first four are the connection's; the rest are MCP steps.
/// Serialised in `snake_case`; these are the keys of `timings_ms`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Phase {
    /// Host name resolution.
    Dns,
    /// TCP connect.
    Connect,
    /// TLS handshake (https only).
    Tls,
    /// From sending the first request to its first response byte.
    FirstByte,
    /// Starting a stdio child (until its stdin/stdout are open).
    Spawn,
    /// Modern `server/discover`.
    Discover,
    /// Legacy `initialize`.
    Initialize,
    /// Legacy `notifications/initialized`.
    Initialized,
    /// HTTP+SSE: GET the stream and wait for the `endpoint` event.
    SseEndpoint,
    /// `tools/list`, all pages.
    ToolsList,
    /// Legacy `ping`.
    Ping,
    /// The opt-in `tools/call`.
    ToolsCall,
    /// The foreign-`Origin` request.
    OriginCheck,
    /// Obtaining an OAuth access token: discovery (RFC 9728, RFC 8414) and the token request, only when the
    /// token cache could not answer. Nested in the phase whose request needed the token, so also counted there.
    Token,
    /// The synthetic transactions (all of them, see `crate::transaction`); not part of the `slow` bound.
    Transactions,
    /// Ending the session (DELETE, closing the SSE stream, stdio shutdown).
    Close,
    /// The whole probe.
    Total,
}

impl Phase {
    /// The stable label (the `timings_ms` key).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Milliseconds per phase, in the order the phases ran (`total` last). Serialised as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings(pub Vec<(Phase, f64)>);

impl Timings {
    /// Adds `ms` to `phase` (a phase that runs twice, e.g. a reconnect, accumulates).
    pub fn add(&mut self, phase: Phase, ms: f64) {
        if let Some(slot) = self.0.iter_mut().find(|(p, _)| *p == phase) {
            slot.1 += ms;
        } else {
            self.0.push((phase, ms));
        }
    }

    /// The milliseconds recorded for `phase`.
    pub fn get(&self, phase: Phase) -> Option<f64> {
        self.0.iter().find(|(p, _)| *p == phase).map(|(_, ms)| *ms)
    }
}

impl Serialize for Timings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (phase, ms) in &self.0 {
            // Three decimals: microsecond resolution is plenty and keeps the JSON short.
            map.serialize_entry(phase.as_str(), &((ms * 1000.0).round() / 1000.0))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Timings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let mut out = Timings::default();
        for (k, v) in map {
            let phase: Phase =
                serde_json::from_value(Value::String(k)).map_err(serde::de::Error::custom)?;
            out.add(phase, v.as_f64().unwrap_or_default());
        }
        Ok(out)
    }
}

/// The server's self-reported identity (`serverInfo` in `initialize`, `_meta` serverInfo in `server/discover`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
}

/// What the TLS handshake showed. Present for `https` targets that reached the handshake.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// True when the chain verified against the trust anchors and matched the host name.
    pub valid: bool,
    /// Why verification failed, when it did.
    pub error: Option<String>,
    /// The leaf certificate's subject (RFC 4514 string).
    pub subject: Option<String>,
    /// The leaf certificate's issuer (RFC 4514 string).
    pub issuer: Option<String>,
    /// The leaf's `notAfter`, RFC 3339 UTC.
    pub not_after: Option<String>,
    /// Whole days from the probe until `not_after` (negative when expired).
    pub days_left: Option<i64>,
    /// The negotiated TLS version (`TLSv1_3`, …).
    pub version: Option<String>,
}

/// What a 401/403 advertised (RFC 9728 protected resource metadata; MCP 2025-11-25 `basic/authorization`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// The HTTP status (401 or 403).
    pub status: u16,
    /// The `WWW-Authenticate` header, verbatim.
    pub www_authenticate: Option<String>,
    /// The `resource_metadata` URL from `WWW-Authenticate`.
    pub resource_metadata_url: Option<String>,
    /// The fetched metadata document, when it could be fetched and parsed.
    pub resource_metadata: Option<Value>,
    /// `authorization_servers` from the document.
    pub authorization_servers: Vec<String>,
}

/// Which configured credential an expiry date belongs to (see [`crate::probe::CredentialExpiry`]). Serialised in
/// `snake_case`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CredentialKind {
    /// The OAuth client secret (`client_secret_expires_at`, RFC 7591 §3.2.1).
    ClientSecret,
    /// A static API key or bearer token with an expiry date the operator configured.
    ApiKey,
    /// A refresh token, by its configured maximum age.
    RefreshToken,
}

impl CredentialKind {
    /// The stable label, as serialised.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The credential in words, for messages (`the client secret`).
    pub fn describe(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "the client secret",
            CredentialKind::ApiKey => "the API key",
            CredentialKind::RefreshToken => "the refresh token",
        }
    }
}

/// A configured credential's expiry as the probe saw it (the report's `credentials`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialStatus {
    /// Which credential.
    pub kind: CredentialKind,
    /// When it expires, RFC 3339 UTC.
    pub expires_at: String,
    /// Whole days from the probe until `expires_at` (negative once expired).
    pub days_left: i64,
}

/// Details of the reason behind a verdict that is not healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The reason.
    pub reason: Reason,
    /// One human sentence; never contains a secret.
    pub message: String,
    /// The phase it happened in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The HTTP status, for `http_status`, `session_lost`, `auth_required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The JSON-RPC error code, for `rpc_error` (and `unsupported_version` when the server sent one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_code: Option<i64>,
    /// The JSON-RPC error message, for `rpc_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_message: Option<String>,
}

impl Failure {
    /// A failure with just a reason and a message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            phase: None,
            http_status: None,
            rpc_code: None,
            rpc_message: None,
        }
    }

    /// Sets the phase.
    pub fn in_phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }
}

/// The outcome of the opt-in tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallOutcome {
    /// The tool called.
    pub name: String,
    /// `isError` from the result.
    pub is_error: bool,
}

/// One probe's full result. The JSON form is the stable schema documented in `docs/check-json.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The target's URL, or `stdio: <command>`.
    pub url: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The one reason behind a verdict that is not healthy; `null` when healthy.
    pub reason: Option<Reason>,
    /// Details of `reason`; `null` when healthy.
    pub failure: Option<Failure>,
    /// The era detected, when the probe got that far.
    pub era: Option<Era>,
    /// The transport used.
    pub transport: Option<TransportKind>,
    /// The protocol version spoken (negotiated for legacy, requested for modern).
    pub protocol_version: Option<String>,
    /// The server's identity.
    pub server_info: Option<ServerInfo>,
    /// The server's capabilities object as it sent it.
    pub capabilities: Option<Value>,
    /// Number of tools listed.
    pub tools_count: Option<usize>,
    /// SHA-256 (hex) of the canonical tool list (see `crate::schema`).
    pub schema_hash: Option<String>,
    /// Milliseconds per phase.
    pub timings_ms: Timings,
    /// TLS details, `null` for plain HTTP and stdio.
    pub tls: Option<TlsInfo>,
    /// What a 401/403 advertised.
    pub auth: Option<AuthInfo>,
    /// The opt-in tool call's outcome.
    pub tool_call: Option<ToolCallOutcome>,
    /// The configured credentials' expiry dates with the days left (empty, and left out of the JSON, when none
    /// is configured). One inside the warning window makes the verdict `degraded` (`credential_expiring`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialStatus>,
    /// Findings that do not change the verdict.
    pub warnings: Vec<Warning>,
    /// When the probe started, RFC 3339 UTC.
    pub started_at: String,
    /// One report per transaction of [`crate::ProbeOptions::transactions`], in order; absent from the JSON when
    /// none were asked for. They never change the probe's own verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<crate::transaction::TransactionReport>,
    /// The tools as listed (not serialised: `--snapshot` and `monitor` use them).
    #[serde(skip)]
    pub tools: Vec<Value>,
}

impl ProbeReport {
    /// The report of a probe that failed before it learned anything about the server: the verdict follows from
    /// `failure.reason` (see [`Reason::verdict`]), every fact is `None` and there are no warnings. For the callers
    /// that judge a probe without running it to the end: a probe abandoned at its deadline (`check`, the
    /// gateway's `/ready`, the monitor's scheduler), a name that did not resolve during the census's address
    /// check.
    ///
    /// `url` is the target as displayed (credentials already redacted), `timings_ms` what was measured (usually
    /// just `total`), `started_at` RFC 3339 UTC or empty when unknown.
    pub fn failed(
        url: String,
        failure: Failure,
        timings_ms: Timings,
        started_at: String,
    ) -> ProbeReport {
        ProbeReport::bare(
            url,
            failure.reason.verdict(),
            Some(failure),
            timings_ms,
            started_at,
        )
    }

    /// The report of a liveness-only probe that succeeded: `healthy`, every fact `None`, no warnings. For the
    /// gateway's stdio warm spare, which may only be pinged before a client initializes it (2025-11-25
    /// `basic/lifecycle` §Initialization). `timings_ms` as measured, `started_at` RFC 3339 UTC.
    pub fn alive(url: String, timings_ms: Timings, started_at: String) -> ProbeReport {
        ProbeReport::bare(url, Verdict::Healthy, None, timings_ms, started_at)
    }

    /// A report with `verdict` (and `failure`'s reason, if any) and no facts.
    fn bare(
        url: String,
        verdict: Verdict,
        failure: Option<Failure>,
        timings_ms: Timings,
        started_at: String,
    ) -> ProbeReport {
        ProbeReport {
            url,
            verdict,
            reason: failure.as_ref().map(|f| f.reason),
            failure,
            era: None,
            transport: None,
            protocol_version: None,
            server_info: None,
            capabilities: None,
            tools_count: None,
            schema_hash: None,
            timings_ms,
            tls: None,
            auth: None,
            tool_call: None,
            credentials: Vec::new(),
            warnings: Vec::new(),
            started_at,
            transactions: Vec::new(),
            tools: Vec::new(),
        }
    }

    /// The current time as RFC 3339 UTC, the shape of [`ProbeReport::started_at`] (empty if it cannot be
    /// formatted, which the `time` crate only does for years outside 0..=9999).
    pub fn now_rfc3339() -> String {
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }

    /// True for `healthy` and `degraded`.
    pub fn is_usable(&self) -> bool {
        matches!(self.verdict, Verdict::Healthy | Verdict::Degraded)
    }
}
