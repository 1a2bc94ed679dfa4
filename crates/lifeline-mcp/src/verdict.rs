//! The bounded vocabulary every Lifeline face speaks: a probe's [`Verdict`], the one [`Reason`] behind a verdict
//! that is not healthy, and the [`Warning`]s that do not change the verdict.
//!
//! `check`, `scan`, `monitor`, alerts and the gateway's `/ready` all use these words, so they are stable: a new
//! variant is an addition to `docs/check-json.md`, never a rename.
//!
//! The labels, the variant lists and parsing are derived by `strum` with the same `snake_case` names serde uses
//! (the `labels_match_serde` test holds them together), so a new variant needs no hand-kept table: it is in
//! [`Reason::ALL`] at once, and [`Reason::verdict`] does not compile until it is classified.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumCount, EnumString, IntoStaticStr, VariantArray};

/// The outcome of one probe, from best to worst for a client.
///
/// Serialised in `snake_case` (`"healthy"`, `"degraded"`, `"auth_required"`, `"unhealthy"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    IntoStaticStr,
    EnumCount,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Verdict {
    /// The handshake and the tool list succeeded within the bounds, and nothing degrades it.
    Healthy,
    /// Usable, but something needs attention soon: a `tool_error`, `slow`, `cert_expiring` or
    /// `credential_expiring` reason.
    Degraded,
    /// The server answered 401/403 and the probe had no credential to present: it is up, but closed to
    /// anonymous clients. A credential that was presented and rejected is `unhealthy` with `auth_failed`.
    AuthRequired,
    /// A client cannot use the server: the [`Reason`] says why.
    Unhealthy,
}

impl Verdict {
    /// The stable label, as serialised (`"healthy"`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a probe's verdict is not healthy. Exactly one reason is reported per probe (the first that applies);
/// details (HTTP status, timed-out phase, JSON-RPC code) travel beside it in [`crate::probe::Failure`].
///
/// The census categories of `lifeline scan` are defined over these: *dead* is `dns_failed`, `connect_refused`,
/// `connect_timeout`, `tls_failed`, `timeout`; *auth-gated* is `auth_required`; *broken* is every other
/// unhealthy reason.
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
    EnumCount,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// The opt-in tool call returned `isError: true` (degraded); in a transaction step it fails the step.
    ToolError,
    /// The whole probe took longer than the latency bound (degraded); a transaction step over its
    /// `max_latency.degraded` (degraded) or `max_latency.unhealthy` (unhealthy, see `transaction`).
    Slow,
    /// The certificate expires within the warning window (degraded).
    CertExpiring,
    /// 401/403 with `WWW-Authenticate` (verdict `auth_required`) while the probe presented no credential.
    AuthRequired,
    /// A credential was presented and rejected (verdict `unhealthy`): the authorization server refused the
    /// token request (RFC 6749 §5.2: `invalid_client`, `invalid_grant`, …), the server answered 401 to a token
    /// obtained during this probe or to a configured bearer token / `Authorization` header, or 403
    /// `insufficient_scope` (RFC 6750 §3.1) to a token. Also a credential that could not be presented (an
    /// unreadable secret file, an unusable private key).
    AuthFailed,
    /// The probe could not obtain a token for a reason other than a rejected credential (verdict `unhealthy`):
    /// the protected resource metadata (RFC 9728) or the authorization server's metadata (RFC 8414, OpenID
    /// Connect Discovery) could not be found or failed validation (`resource` or `issuer` mismatch), or the token
    /// endpoint could not be reached or answered something that is not a token response.
    AuthServerError,
    /// A configured credential expires within the warning window (degraded): a client secret
    /// (`client_secret_expires_at`, RFC 7591 §3.2.1), an API key's expiry date, or a refresh token nearing its
    /// configured maximum age. The report's `credentials` say which, with the days left.
    CredentialExpiring,
    /// A transaction step's `structuredContent` does not match the tool's `outputSchema`, or is missing although
    /// one is declared (2025-11-25 `server/tools` §Output Schema).
    SchemaViolation,
    /// A transaction step's `expect` expression did not evaluate to `true` (or a `save` failed to evaluate).
    AssertionFailed,
    /// A transaction step was answered with `resultType: "input_required"` (2026-07-28 `server/tools` §Input
    /// Required Tool Results): the server wants input a probe cannot give.
    InputRequired,
    /// The transaction safety gate refused a tool: not in `allow_tools`, or not declaring `readOnlyHint: true`
    /// without `allow_side_effects: true`. Nothing was called.
    NotAllowed,
}

impl Reason {
    /// The stable label, as serialised (`"dns_failed"`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every reason, in declaration order (for docs, metrics label sets and exhaustive tests). Derived from the
    /// enum (`strum::VariantArray`), so it cannot miss a variant.
    pub const ALL: [Reason; Reason::COUNT] = match Reason::VARIANTS.first_chunk() {
        Some(all) => *all,
        None => panic!("VARIANTS holds COUNT variants"),
    };

    /// The verdict this reason implies: degraded for `tool_error`, `slow`, `cert_expiring`,
    /// `credential_expiring`; `auth_required` for itself; unhealthy for everything else (`auth_failed` too: the
    /// probe's own credential no longer opens the server).
    pub fn verdict(self) -> Verdict {
        match self {
            Reason::ToolError
            | Reason::Slow
            | Reason::CertExpiring
            | Reason::CredentialExpiring => Verdict::Degraded,
            Reason::AuthRequired => Verdict::AuthRequired,
            // Listed one by one, not `_`: a new reason must be classified here before it compiles.
            Reason::DnsFailed
            | Reason::ConnectRefused
            | Reason::ConnectTimeout
            | Reason::TlsFailed
            | Reason::TlsExpired
            | Reason::HttpStatus
            | Reason::NotMcp
            | Reason::ProtocolError
            | Reason::RpcError
            | Reason::UnsupportedVersion
            | Reason::Timeout
            | Reason::SessionLost
            | Reason::NoTools
            | Reason::AuthFailed
            | Reason::AuthServerError
            | Reason::SchemaViolation
            | Reason::AssertionFailed
            | Reason::InputRequired
            | Reason::NotAllowed => Verdict::Unhealthy,
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

/// A finding that does not change the verdict. Serialised in `snake_case`.
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
    EnumCount,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strum labels, `Display`, `FromStr` and serde must all say the same word: the serde names are in JSON
    /// outputs and databases.
    fn same_word_everywhere<T>(all: &[T], label: fn(&T) -> &'static str)
    where
        T: Serialize + std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        for v in all {
            let word = label(v);
            assert_eq!(serde_json::to_value(v).unwrap(), word);
            assert_eq!(v.to_string(), word);
            assert_eq!(word.parse::<T>().ok().as_ref(), Some(v), "{word}");
        }
    }

    #[test]
    fn labels_match_serde() {
        same_word_everywhere(&Reason::ALL, |r| r.as_str());
        same_word_everywhere(Verdict::VARIANTS, |v| v.as_str());
        same_word_everywhere(Warning::VARIANTS, |w| w.as_str());
        assert_eq!(Reason::ALL.len(), 24);
        assert_eq!(Reason::ALL[0], Reason::DnsFailed);
        assert_eq!(Reason::ALL[16], Reason::AuthRequired);
        assert_eq!(Reason::AuthFailed.as_str(), "auth_failed");
        assert_eq!(Reason::CredentialExpiring.as_str(), "credential_expiring");
        assert_eq!(
            Warning::MissingXAccelBuffering.as_str(),
            "missing_x_accel_buffering"
        );
        assert_eq!(Verdict::AuthRequired.as_str(), "auth_required");
        assert!("Healthy".parse::<Verdict>().is_err());
        assert!("no_such_reason".parse::<Reason>().is_err());
    }

    #[test]
    fn other_protocol_labels_match_serde() {
        use crate::era::{Era, TransportKind};
        use crate::probe::Phase;
        use crate::schema::ChangeKind;
        same_word_everywhere(Phase::VARIANTS, |p| p.as_str());
        same_word_everywhere(Era::VARIANTS, |e| e.as_str());
        same_word_everywhere(TransportKind::VARIANTS, |t| t.as_str());
        same_word_everywhere(ChangeKind::VARIANTS, |k| k.as_str());
        assert_eq!(Phase::FirstByte.as_str(), "first_byte");
        assert_eq!(Phase::SseEndpoint.as_str(), "sse_endpoint");
        assert_eq!(TransportKind::HttpSse.as_str(), "http_sse");
    }

    #[test]
    fn reason_verdicts() {
        assert_eq!(Reason::Slow.verdict(), Verdict::Degraded);
        assert_eq!(Reason::AuthRequired.verdict(), Verdict::AuthRequired);
        assert_eq!(Reason::AuthFailed.verdict(), Verdict::Unhealthy);
        assert_eq!(Reason::AuthServerError.verdict(), Verdict::Unhealthy);
        assert_eq!(Reason::CredentialExpiring.verdict(), Verdict::Degraded);
        assert_eq!(Reason::NoTools.verdict(), Verdict::Unhealthy);
        assert!(Reason::ConnectRefused.is_dead());
        assert!(!Reason::HttpStatus.is_dead());
    }
}
