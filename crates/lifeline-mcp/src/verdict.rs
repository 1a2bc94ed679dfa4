//! The bounded vocabulary every Lifeline face speaks: a probe's [`Verdict`], the one [`Reason`] behind a verdict
//! that is not healthy, and the [`Warning`]s that do not change the verdict.
//!
//! `check`, `scan`, `monitor`, alerts and the gateway's `/ready` all use these words, so they are stable: a new
//! variant is an addition to `docs/check-json.md`, never a rename.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome of one probe, from best to worst for a client.
///
/// Serialised in `snake_case` (`"healthy"`, `"degraded"`, `"auth_required"`, `"unhealthy"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The handshake and the tool list succeeded within the bounds, and nothing degrades it.
    Healthy,
    /// Usable, but something needs attention soon: a `tool_error`, `slow`, or `cert_expiring` reason.
    Degraded,
    /// The server answered 401/403: it is up, but the probe had no (valid) credentials.
    AuthRequired,
    /// A client cannot use the server: the [`Reason`] says why.
    Unhealthy,
}

impl Verdict {
    /// The stable label, as serialised (`"healthy"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::AuthRequired => "auth_required",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe's verdict is not healthy. Exactly one reason is reported per probe (the first that applies);
/// details (HTTP status, timed-out phase, JSON-RPC code) travel beside it in [`crate::probe::Failure`].
///
/// The census categories of `lifeline scan` are defined over these: *dead* is `dns_failed`, `connect_refused`,
/// `connect_timeout`, `tls_failed`, `timeout`; *auth-gated* is `auth_required`; *broken* is every other
/// unhealthy reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The host name did not resolve.
    DnsFailed,
    /// Every resolved address refused the TCP connection.
    ConnectRefused,
    /// The TCP connection did not complete within the connect timeout.
    ConnectTimeout,
    /// The TLS handshake failed: untrusted chain, name mismatch, protocol error.
    TlsFailed,
    /// The server's certificate is past its `not_after`.
    TlsExpired,
    /// An HTTP status that no MCP step accepts (e.g. 502); the status is kept.
    HttpStatus,
    /// The reply was HTML or another non-JSON-RPC body.
    NotMcp,
    /// Malformed JSON-RPC or SSE, a reply over the size bound, or a reply that breaks the transport's rules.
    ProtocolError,
    /// The server answered a JSON-RPC error; code and message are kept.
    RpcError,
    /// No protocol version both sides speak.
    UnsupportedVersion,
    /// A step did not complete in time; the phase is kept.
    Timeout,
    /// The server answered 404 on a live session (spec 2025-11-25 `basic/transports` §Session Management).
    SessionLost,
    /// The server declares the `tools` capability but lists none.
    NoTools,
    /// The opt-in tool call returned `isError: true` (degraded).
    ToolError,
    /// The whole probe took longer than the latency bound (degraded).
    Slow,
    /// The certificate expires within the warning window (degraded).
    CertExpiring,
    /// 401/403 with `WWW-Authenticate` (verdict `auth_required`).
    AuthRequired,
}

impl Reason {
    /// The stable label, as serialised (`"dns_failed"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DnsFailed => "dns_failed",
            Reason::ConnectRefused => "connect_refused",
            Reason::ConnectTimeout => "connect_timeout",
            Reason::TlsFailed => "tls_failed",
            Reason::TlsExpired => "tls_expired",
            Reason::HttpStatus => "http_status",
            Reason::NotMcp => "not_mcp",
            Reason::ProtocolError => "protocol_error",
            Reason::RpcError => "rpc_error",
            Reason::UnsupportedVersion => "unsupported_version",
            Reason::Timeout => "timeout",
            Reason::SessionLost => "session_lost",
            Reason::NoTools => "no_tools",
            Reason::ToolError => "tool_error",
            Reason::Slow => "slow",
            Reason::CertExpiring => "cert_expiring",
            Reason::AuthRequired => "auth_required",
        }
    }

    /// Every reason, in declaration order (for docs, metrics label sets and exhaustive tests).
    pub const ALL: [Reason; 17] = [
        Reason::DnsFailed,
        Reason::ConnectRefused,
        Reason::ConnectTimeout,
        Reason::TlsFailed,
        Reason::TlsExpired,
        Reason::HttpStatus,
        Reason::NotMcp,
        Reason::ProtocolError,
        Reason::RpcError,
        Reason::UnsupportedVersion,
        Reason::Timeout,
        Reason::SessionLost,
        Reason::NoTools,
        Reason::ToolError,
        Reason::Slow,
        Reason::CertExpiring,
        Reason::AuthRequired,
    ];

    /// The verdict this reason implies: degraded for `tool_error`, `slow`, `cert_expiring`; `auth_required` for
    /// itself; unhealthy for everything else.
    pub fn verdict(self) -> Verdict {
        match self {
            Reason::ToolError | Reason::Slow | Reason::CertExpiring => Verdict::Degraded,
            Reason::AuthRequired => Verdict::AuthRequired,
            _ => Verdict::Unhealthy,
        }
    }

    /// True when the reason means nothing answered at the network level (the census's *dead*).
    pub fn is_dead(self) -> bool {
        matches!(
            self,
            Reason::DnsFailed
                | Reason::ConnectRefused
                | Reason::ConnectTimeout
                | Reason::TlsFailed
                | Reason::Timeout
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding that does not change the verdict. Serialised in `snake_case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// The server speaks only the HTTP+SSE transport, deprecated since 2025-03-26
    /// (2026-07-28 `basic/transports/streamable-http` §HTTP+SSE Transport).
    DeprecatedTransport,
    /// An SSE response lacked `X-Accel-Buffering: no` (2026-07-28 `streamable-http` §Receiving Messages: SHOULD).
    MissingXAccelBuffering,
    /// A request with a foreign `Origin` was served; servers MUST answer 403
    /// (2026-07-28 `streamable-http` §Security & Endpoint; 2025-11-25 `basic/transports` §Security Warning).
    NoOriginCheck,
    /// The session could not be ended: DELETE failed or was refused with something other than 405.
    SessionNotClosed,
    /// The server answered DELETE with 405: it does not let clients end sessions (allowed by 2025-11-25
    /// `basic/transports` §Session Management), so the session lives until the server expires it.
    SessionDeleteNotAllowed,
    /// The server negotiated an older legacy protocol version than the newest Lifeline offers.
    OldProtocolVersion,
    /// `tools/list` pagination stopped at the page bound before `nextCursor` ran out.
    ToolListTruncated,
    /// A second reason that also applied but is not the reported one (degraded findings only).
    AlsoDegraded,
}

impl Warning {
    /// The stable label, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::DeprecatedTransport => "deprecated_transport",
            Warning::MissingXAccelBuffering => "missing_x_accel_buffering",
            Warning::NoOriginCheck => "no_origin_check",
            Warning::SessionNotClosed => "session_not_closed",
            Warning::SessionDeleteNotAllowed => "session_delete_not_allowed",
            Warning::OldProtocolVersion => "old_protocol_version",
            Warning::ToolListTruncated => "tool_list_truncated",
            Warning::AlsoDegraded => "also_degraded",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_serde() {
        for r in Reason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for v in [
            Verdict::Healthy,
            Verdict::Degraded,
            Verdict::AuthRequired,
            Verdict::Unhealthy,
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }

    #[test]
    fn reason_verdicts() {
        assert_eq!(Reason::Slow.verdict(), Verdict::Degraded);
        assert_eq!(Reason::AuthRequired.verdict(), Verdict::AuthRequired);
        assert_eq!(Reason::NoTools.verdict(), Verdict::Unhealthy);
        assert!(Reason::ConnectRefused.is_dead());
        assert!(!Reason::HttpStatus.is_dead());
    }
}
