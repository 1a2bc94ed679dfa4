//! The census categories: one per scanned endpoint, derived only from the probe's verdict and reason so that a
//! census means the same thing as `lifeline check`.

use lifeline_mcp::{ProbeReport, Verdict};
use serde::{Deserialize, Serialize};
use strum::{Display, EnumCount, EnumString, IntoStaticStr, VariantArray};

/// What a census says about one endpoint. Serialised in `snake_case`; ordered from best to worst for a client
/// ([`Category::rank`]), which is also how `--attempts` picks the best of several probes.
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
pub enum Category {
    /// Verdict `healthy`: the handshake and the tool list completed within the latency bound.
    Healthy,
    /// Verdict `degraded`: usable, but `slow` (over the latency bound) or `cert_expiring`.
    Degraded,
    /// Verdict `auth_required`: the server is up and wants credentials (401/403).
    AuthGated,
    /// Unhealthy for any reason but the dead ones: it answers at the network level but fails MCP
    /// (`not_mcp`, `protocol_error`, `rpc_error`, `unsupported_version`, `http_status`, `session_lost`,
    /// `no_tools`, `tls_expired`, …).
    Broken,
    /// Unhealthy because nothing answered: `dns_failed`, `connect_refused`, `connect_timeout`, `tls_failed`,
    /// `timeout` ([`lifeline_mcp::Reason::is_dead`]).
    Dead,
    /// Not probed: the host resolves to a private, loopback, link-local or otherwise non-public address and
    /// `--allow-private` was not given.
    RefusedPrivate,
}

impl Category {
    /// Every category, best first (the order of the summary tables). Derived from the enum
    /// (`strum::VariantArray`), so it cannot miss a variant.
    pub const ALL: [Category; Category::COUNT] = match Category::VARIANTS.first_chunk() {
        Some(all) => *all,
        None => panic!("VARIANTS holds COUNT variants"),
    };

    /// The category of a probe result.
    pub fn of(report: &ProbeReport) -> Category {
        match report.verdict {
            Verdict::Healthy => Category::Healthy,
            Verdict::Degraded => Category::Degraded,
            Verdict::AuthRequired => Category::AuthGated,
            Verdict::Unhealthy => match report.reason {
                Some(reason) if reason.is_dead() => Category::Dead,
                _ => Category::Broken,
            },
        }
    }

    /// The stable label, as serialised (`"healthy"`, `"auth_gated"`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a label as produced by [`Category::as_str`] (the same as `label.parse().ok()`).
    pub fn from_label(label: &str) -> Option<Category> {
        label.parse().ok()
    }

    /// 0 for the best ([`Category::Healthy`]) up to 5; lower is better.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// Index into per-category arrays (same as [`Category::rank`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// True for `healthy` and `degraded`: a client can use the endpoint.
    pub fn is_usable(self) -> bool {
        matches!(self, Category::Healthy | Category::Degraded)
    }
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::Reason;

    use super::*;
    use crate::testutil::report_with;

    #[test]
    fn every_reason_maps_to_the_documented_category() {
        for reason in Reason::ALL {
            let report = report_with(reason.verdict(), Some(reason));
            let expected = match reason {
                Reason::DnsFailed
                | Reason::ConnectRefused
                | Reason::ConnectTimeout
                | Reason::TlsFailed
                | Reason::Timeout => Category::Dead,
                Reason::AuthRequired => Category::AuthGated,
                Reason::ToolError
                | Reason::Slow
                | Reason::CertExpiring
                | Reason::CredentialExpiring => Category::Degraded,
                // The census presents no credential; were one rejected, the endpoint is not usable.
                Reason::AuthFailed | Reason::AuthServerError => Category::Broken,
                Reason::TlsExpired
                | Reason::HttpStatus
                | Reason::NotMcp
                | Reason::ProtocolError
                | Reason::RpcError
                | Reason::UnsupportedVersion
                | Reason::SessionLost
                | Reason::NoTools
                // Transaction reasons: a census probe runs no transactions, but a report carrying one is
                // broken like any other unhealthy reason.
                | Reason::SchemaViolation
                | Reason::AssertionFailed
                | Reason::InputRequired
                | Reason::NotAllowed => Category::Broken,
            };
            assert_eq!(Category::of(&report), expected, "{reason}");
        }
        assert_eq!(
            Category::of(&report_with(Verdict::Healthy, None)),
            Category::Healthy
        );
        // An unhealthy verdict without a reason is a prober bug; count it as broken rather than dead.
        assert_eq!(
            Category::of(&report_with(Verdict::Unhealthy, None)),
            Category::Broken
        );
    }

    #[test]
    fn labels_round_trip_and_match_serde() {
        for c in Category::ALL {
            assert_eq!(Category::from_label(c.as_str()), Some(c));
            assert_eq!(c.as_str().parse::<Category>().ok(), Some(c));
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(Category::ALL[c.index()], c);
        }
        assert!(Category::Healthy.rank() < Category::Dead.rank());
        assert_eq!(Category::ALL.len(), 6);
        assert_eq!(Category::AuthGated.as_str(), "auth_gated");
        assert_eq!(Category::RefusedPrivate.as_str(), "refused_private");
        assert_eq!(Category::from_label("AuthGated"), None);
    }
}
