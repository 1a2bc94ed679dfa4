//! The policy point (issue 12), behind authentication (`auth`): which tools a verified principal may call, the
//! `tools/list` answers it sees, how fast it may call, and the audit line of every `tools/call` (2026-07-28
//! `server/tools` §Security Considerations: servers MUST "implement proper access controls" and "rate limit tool
//! invocations"; clients SHOULD "log tool usage for audit purposes", which a gateway can do for all of them).
//!
//! - **Per-tool rules** (`auth.tools`): the first rule whose pattern matches the tool name wins; its
//!   `require_scopes` must all be granted to the principal. A tool no rule matches needs no scope beyond a valid
//!   credential (end the list with `match: "*"` to require one everywhere). Patterns are tool names with `*`
//!   wildcards ([`crate::config::ToolPattern`]), matched case-sensitively against the whole name (2026-07-28
//!   `server/tools` §Tool Names: names are case-sensitive). The config admits only tool-name characters, so the
//!   `?` and `[…]` of a full glob could never be used and no glob crate is needed. A `tools/call` the rules deny
//!   gets 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` naming every scope the call
//!   needs (2025-11-25 `basic/authorization` §Scope Challenge Handling, RFC 6750 §3.1), not only the missing
//!   ones, so a client that steps up keeps what it had. Scopes compare as exact strings: no hierarchy.
//! - **Fail closed**: under a policy, a batch or a body the one parse cannot read as a single message (duplicate
//!   keys) is refused with 400 (`Proxy::refusal`), never passed on unread.
//! - **`tools/list` filtering** ([`list`]): a `tools/list` answer lists only the tools the caller may call
//!   (2026-07-28 `server/tools` §Capabilities: the set "MAY vary by the authorization presented on the request").
//! - **Rate limits** ([`rate`]): a token bucket per verified principal (never per address), optionally one per
//!   (principal, tool).
//! - **Audit** ([`Audit`]): one `tracing` event per `tools/call` on the target `lifeline::audit`, when it ends.
//!
//! The tool name is the body's `params.name` from the one parse of the request (`rpc::summarize`); the
//! `Mcp-Name` header is only checked against it (`edge::check_mirrored_headers`), never trusted instead of it.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::auth::{Principal, Source};
use crate::body::{self, Body};
use crate::config::{AuthConfig, ToolRule};

pub(crate) mod list;
pub(crate) mod rate;

/// The policy of one gateway: the per-tool rules and the rate limiter, built from the `auth:` block.
#[derive(Debug)]
pub(crate) struct Policy {
    /// `auth.tools`, shared with the `tools/list` filters of answers in flight.
    pub(crate) rules: Arc<Rules>,
    /// `auth.rate_limit`, when set.
    pub(crate) limiter: Option<rate::Limiter>,
}

impl Policy {
    /// The policy of `cfg`; `None` when it sets neither `tools` rules nor a `rate_limit` (then nothing but
    /// authentication applies).
    pub(crate) fn new(cfg: &AuthConfig) -> Option<Policy> {
        if cfg.tools.is_empty() && cfg.rate_limit.is_none() {
            return None;
        }
        let limiter = cfg.rate_limit.as_ref().map(|r| {
            // `N/per` refills one token every `per / N`.
            let period = r.per_principal.per / r.per_principal.count.get();
            let burst = std::num::NonZeroU32::new(r.burst).unwrap_or(r.per_principal.count);
            rate::Limiter::new(period, burst, r.per_tool)
        });
        Some(Policy {
            rules: Arc::new(Rules::new(cfg.tools.clone())),
            limiter,
        })
    }
}

/// The per-tool rules (`auth.tools`, validated by the config into [`ToolRule`]s), in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    rules: Vec<ToolRule>,
}

impl Rules {
    /// The rules, first match wins.
    pub(crate) fn new(rules: Vec<ToolRule>) -> Rules {
        Rules { rules }
    }

    /// True when there is no rule (every tool is callable by every principal).
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The scopes a call of `tool` needs: those of the first rule whose pattern matches, none when no rule does.
    pub(crate) fn required_scopes(&self, tool: &str) -> &[String] {
        self.rules
            .iter()
            .find(|r| r.pattern.matches(tool))
            .map_or(&[], |r| r.require_scopes.as_slice())
    }

    /// `Ok` when `granted` holds every scope a call of `tool` needs; else `Err` with all of them (for the
    /// challenge's `scope`, 2025-11-25 `basic/authorization` §Runtime Insufficient Scope Errors).
    pub(crate) fn check(&self, granted: &[String], tool: &str) -> Result<(), &[String]> {
        let required = self.required_scopes(tool);
        if required.iter().all(|s| granted.contains(s)) {
            Ok(())
        } else {
            Err(required)
        }
    }

    /// Whether a principal granted `granted` may call `tool`.
    pub(crate) fn may_call(&self, granted: &[String], tool: &str) -> bool {
        self.check(granted, tool).is_ok()
    }
}

/// 429 for a request over its principal's rate limit: `Retry-After` (whole seconds, at least 1) and a JSON-RPC
/// error carrying the request's `id` (never an empty body: a client drops an answer without its id and the call
/// hangs), `-32000` with `data.retryAfterMs` for clients that never see HTTP headers.
pub(crate) fn rate_limited(id: Option<&Value>, wait: Duration) -> Response<Body> {
    let retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    let error = serde_json::json!({
        "code": body::code::SERVER_ERROR,
        "message": "Too Many Requests: this principal's rate limit is spent; retry later",
        "data": {"retryAfterMs": retry_ms},
    });
    let msg = match id {
        Some(id) => serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error}),
        None => serde_json::json!({"jsonrpc": "2.0", "error": error}),
    };
    let mut resp = body::json_response(StatusCode::TOO_MANY_REQUESTS, &msg);
    // Rounded up, so a client that waits that long finds a token.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// How a `tools/call` ended, for the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Forwarded to the upstream; the HTTP status tells how it answered.
    Forwarded,
    /// Forwarded, but the response body failed mid-way (the upstream cut the stream).
    Failed,
    /// Refused by the gateway, with the bounded reason (`insufficient_scope`, `rate_limited`,
    /// `header_mismatch`, `batch_with_auth`, `invalid_with_auth`).
    Denied(&'static str),
}

/// The audit record of one `tools/call`, emitted when the request's bookkeeping ends (the response body's end),
/// so it carries the final status and the whole duration.
///
/// The line (target `lifeline::audit`, level INFO, message `Tool call.`): `principal` (the subject),
/// `principal.source` (`jwt`, `introspection`, `api_key`), `tool`, `outcome` (`allowed`: forwarded and answered
/// with a 2xx; `failed`: forwarded, the upstream or the stream failed; `denied`), `reason` (for `denied`),
/// `http.status`, `duration_ms` (from the request's arrival to the end of its response), `jsonrpc.request.id`
/// (the id as JSON text) and `session.id` for a Streamable HTTP session (not the 2024-11-05 `sessionId`, which is
/// the capability to post on its stream). Never a token, a key, a header value or the call's arguments.
#[derive(Debug)]
pub(crate) struct Audit {
    pub(crate) principal: Arc<Principal>,
    pub(crate) tool: Box<str>,
    pub(crate) request_id: String,
    pub(crate) session: Option<String>,
    pub(crate) outcome: Outcome,
}

impl Audit {
    /// Writes the line for a request that ended with `status` after `elapsed`.
    pub(crate) fn emit(&self, status: u16, elapsed: Duration) {
        let (outcome, reason) = match self.outcome {
            Outcome::Denied(reason) => ("denied", reason),
            Outcome::Forwarded if (200..300).contains(&status) => ("allowed", ""),
            Outcome::Forwarded | Outcome::Failed => ("failed", ""),
        };
        let source = match self.principal.source {
            Source::Jwt => "jwt",
            Source::Introspection => "introspection",
            Source::ApiKey => "api_key",
        };
        tracing::info!(
            target: "lifeline::audit",
            principal = %self.principal.subject,
            principal.source = source,
            tool = %self.tool,
            outcome,
            reason,
            http.status = status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            jsonrpc.request.id = %self.request_id,
            session.id = self.session.as_deref(),
            "Tool call."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn rule(pattern: &str, scopes: &[&str]) -> ToolRule {
        ToolRule {
            pattern: crate::config::ToolPattern::new(pattern),
            require_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rules(spec: &[(&str, &[&str])]) -> Rules {
        Rules::new(spec.iter().map(|(p, s)| rule(p, s)).collect())
    }

    fn granted(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_match_wins_and_every_required_scope_is_named() {
        let r = rules(&[
            ("delete_*", &["mcp:write", "mcp:admin"]),
            ("get-*x", &["mcp:read"]),
            ("a*", &["letters"]),
            ("echo", &[]),
            ("*", &["mcp:read"]),
        ]);
        // (tool, granted, Ok or the scopes named)
        type Case<'a> = (&'a str, &'a [&'a str], Result<(), &'a [&'a str]>);
        let cases: &[Case<'_>] = &[
            (
                "delete_all",
                &["mcp:write"],
                Err(&["mcp:write", "mcp:admin"]),
            ),
            ("delete_all", &["mcp:admin", "mcp:write"], Ok(())),
            ("delete_", &[], Err(&["mcp:write", "mcp:admin"])),
            // Case-sensitive: `Delete_all` falls through to `*`.
            ("Delete_all", &["mcp:read"], Ok(())),
            ("get-x", &["mcp:read"], Ok(())),
            ("get-yx", &[], Err(&["mcp:read"])),
            ("add", &[], Err(&["letters"])),
            // An explicit empty rule before the catch-all.
            ("echo", &[], Ok(())),
            ("echo2", &[], Err(&["mcp:read"])),
            ("", &[], Err(&["mcp:read"])),
        ];
        for (tool, g, want) in cases {
            let got = r
                .check(&granted(g), tool)
                .map_err(|s| s.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(got, want.map_err(|s| s.to_vec()), "{tool} with {g:?}");
        }
        // No rule: everything is callable.
        assert!(Rules::default().may_call(&[], "delete_all"));
        // No matching rule: no scope needed.
        assert!(rules(&[("delete_*", &["w"])]).may_call(&[], "echo"));
    }

    #[tokio::test]
    async fn rate_limited_answers_carry_the_id_and_when_to_retry() {
        use http_body_util::BodyExt as _;
        let resp = rate_limited(Some(&serde_json::json!("r7")), Duration::from_millis(1500));
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let v: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(v["id"], "r7");
        assert_eq!(v["error"]["data"]["retryAfterMs"], 1500);
        let resp = rate_limited(None, Duration::from_millis(10));
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    }
}
