//! Modern (2026-07-28) clients on a federated endpoint: the bridge from a stateless client to servers of either
//! era. A request without `Mcp-Session-Id` that declares a modern version (in `params._meta` or the
//! `MCP-Protocol-Version` header; 2026-07-28 `basic/versioning` §Protocol Version Negotiation) is served
//! statelessly:
//!
//! - `server/discover` is answered by the gateway: every version the endpoint speaks (2026-07-28, and the legacy
//!   ones through `initialize`), its capabilities and identity;
//! - another version gets `UnsupportedProtocolVersionError` (-32022, HTTP 400) listing the supported ones;
//! - every other request runs on the endpoint's implicit session, which holds one upstream link per server (a
//!   legacy session with a legacy server, made on first use, re-made when it expires, ended with `DELETE` when idle
//!   for `session_idle_ttl`); the reserved `io.modelcontextprotocol/*` keys of `_meta` are not passed to legacy
//!   servers, and results carry `resultType: "complete"` (2026-07-28 `basic/patterns/mrtr`); lists and
//!   `server/discover` carry `cacheScope: "private"`, `ttlMs: 0` (never cached: a server leaving changes them).
//!
//! Weak spot, documented in `docs/gateway-federation.md` §Eras: the implicit session is one per endpoint, not one
//! per verified principal (the federated endpoints do not pass through the `auth:` layer yet), so upstream
//! session state (`logging/setLevel`, subscriptions) is shared by the modern clients of an endpoint.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use lifeline_core::Phase;
use lifeline_mcp::era;
use serde_json::{json, Value};

use super::{capabilities, error, lock, ClientSession, Federation, View};
use crate::body::{self, code, Body};

/// `MCP-Protocol-Version` (2025-11-25 `basic/transports` §Protocol Version Header; 2026-07-28 on every request).
pub(crate) const PROTOCOL_VERSION_HEADER: http::HeaderName =
    http::HeaderName::from_static("mcp-protocol-version");
/// `UnsupportedProtocolVersionError` (2026-07-28 `basic/versioning`).
const UNSUPPORTED_VERSION: i64 = -32022;

/// The modern version a sessionless request declares, if it declares one: `params._meta`'s, else a header naming a
/// version that is not legacy.
pub(crate) fn version(params: &Value, header: Option<&str>) -> Option<String> {
    if let Some(v) = params["_meta"][era::META_PROTOCOL_VERSION].as_str() {
        return Some(v.to_owned());
    }
    header
        .filter(|v| !era::is_known_legacy(v))
        .map(str::to_owned)
}

/// Every version a federated endpoint speaks (also its Server Cards', `card.rs`).
pub(super) fn supported() -> Vec<&'static str> {
    std::iter::once(era::MODERN_VERSION)
        .chain(era::LEGACY_VERSIONS)
        .collect()
}

impl Federation {
    /// Serves one modern request (see the module docs).
    pub(super) async fn modern(
        &self,
        view: View,
        version: String,
        method: &str,
        mut params: Value,
        id: &Value,
    ) -> http::Response<Body> {
        if version != era::MODERN_VERSION {
            return body::json_response(
                StatusCode::BAD_REQUEST,
                &error(
                    id,
                    UNSUPPORTED_VERSION,
                    "Unsupported protocol version",
                    json!({"supported": supported(), "requested": version}),
                ),
            );
        }
        if self.shutdown.phase() >= Phase::Refusing {
            return body::rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SERVER_ERROR,
                "Service Unavailable: this instance is shutting down; retry on another",
                Some(id),
            );
        }
        if method == "server/discover" {
            let result = json!({
                "resultType": "complete",
                "cacheScope": "private",
                "ttlMs": 0,
                "supportedVersions": supported(),
                "capabilities": capabilities(),
                "_meta": {era::META_SERVER_INFO: self.server_info(view)},
            });
            return body::json_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "result": result}),
            );
        }
        if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
            meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
            if meta.is_empty() {
                params.as_object_mut().map(|p| p.remove("_meta"));
            }
        }
        let sess = self.implicit_session(view);
        let mut answer = self.dispatch(&sess, method, params, id).await;
        if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
            result
                .entry("resultType")
                .or_insert_with(|| Value::String("complete".to_owned()));
            if method.ends_with("/list") {
                // 2026-07-28 `schema` (cacheable results): a merged list is never cached across clients or
                // reused: a server leaving or returning changes it at once.
                result.insert("cacheScope".to_owned(), json!("private"));
                result.insert("ttlMs".to_owned(), json!(0));
            }
        }
        body::json_response(StatusCode::OK, &answer)
    }

    /// The endpoint's implicit session for modern clients, made on first use.
    fn implicit_session(&self, view: View) -> Arc<ClientSession> {
        let mut modern = lock(&self.modern);
        let sess = modern
            .entry(view)
            .or_insert_with(|| self.new_session(view))
            .clone();
        *lock(&sess.last_used) = Instant::now();
        sess
    }
}
