//! Modern (2026-07-28) clients on a federated endpoint: the bridge from a stateless client to servers of either
//! era. A request without `Mcp-Session-Id` that declares a modern version (in `params._meta` or the
//! `MCP-Protocol-Version` header; 2026-07-28 `basic/versioning` §Protocol Version Negotiation) is served
//! statelessly:
//!
//! - `server/discover` is answered by the gateway: every version the endpoint speaks (2026-07-28, and the legacy
//!   ones through `initialize`), its capabilities and identity;
//! - another version gets `UnsupportedProtocolVersionError` (-32022, HTTP 400) listing the supported ones;
//! - every other request runs on an implicit session, one per endpoint and verified principal (per client address
//!   when auth is off), which holds one upstream link per server (a legacy session with a legacy server, made on
//!   first use, re-made when it expires, ended with `DELETE` when idle for `session_idle_ttl`); the reserved `io.modelcontextprotocol/*` keys of `_meta` are not passed to legacy
//!   servers, and results carry `resultType: "complete"` (2026-07-28 `basic/patterns/mrtr`); lists and
//!   `server/discover` carry `cacheScope: "private"`, `ttlMs: 0` (never cached: a server leaving changes them).
//!
//! Weak spot, documented in `docs/gateway-federation.md` §Eras: without auth, modern clients behind one address
//! (a NAT, a shared sidecar) share one implicit session, and so its upstream session state (`logging/setLevel`,
//! subscriptions).

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use lifeline_core::Phase;
use lifeline_mcp::era;
use serde_json::{json, Value};

use super::{
    capabilities, error, lock, stream, Answer, Call, ClientSession, Federation, Implicit, View,
};
use crate::body::{self, code, Body};

pub(crate) use crate::http1::MCP_PROTOCOL_VERSION as PROTOCOL_VERSION_HEADER;
/// `UnsupportedProtocolVersionError` (2026-07-28 `basic/versioning`).
const UNSUPPORTED_VERSION: i64 = -32022;
/// The methods a 2026-07-28 server answers here; the rest (among them the legacy `initialize`, `ping`,
/// `logging/setLevel`, `resources/subscribe`, and `subscriptions/listen`, not implemented) get 404 + -32601.
/// 2026-07-28 `changelog.mdx` §Major changes 2, 4 and 5 (SEP-2575): the handshake, `resources/subscribe`,
/// `ping` and `logging/setLevel` are removed from that revision.
const MODERN_METHODS: [&str; 9] = [
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "completion/complete",
];

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
        self: &Arc<Self>,
        view: View,
        call: &Call,
        version: String,
        method: &str,
        mut params: Value,
        id: &Value,
    ) -> http::Response<Body> {
        if let Some(refusal) = invalid(call, &version, method, &params, id) {
            return refusal;
        }
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
        // Log messages only when asked, at that level and above (2026-07-28 `server/utilities/logging`
        // §Per-request log level: "MUST NOT emit notifications/message for a request that does not include
        // this field").
        let logs = stream::Logs::asked(params["_meta"][era::META_LOG_LEVEL].as_str());
        // The envelope keys are the gateway's to set upstream (`client.rs`); the log level goes on to the server
        // (`Federation::exchange_ready`: as it is to a modern one, as `logging/setLevel` to a legacy one).
        if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                k == era::META_LOG_LEVEL || !k.starts_with("io.modelcontextprotocol/")
            });
            if meta.is_empty() {
                params.as_object_mut().map(|p| p.remove("_meta"));
            }
        }
        let Some(sess) = self.implicit_session(view, &call.implicit_key()) else {
            return body::rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SERVER_ERROR,
                "Service Unavailable: too many sessions on this instance",
                Some(id),
            );
        };
        if stream::streams(method) {
            return self
                .answer(sess, method, params, id.clone(), logs, Some(finish))
                .await;
        }
        let mut answer = self.dispatch(&sess, method, params, id, None).await;
        finish(method, &mut answer);
        answer.into_response()
    }

    /// `owner`'s implicit session on the endpoint `view`, made on first use; `None` when `max_sessions` implicit
    /// sessions exist already (the caller answers 503).
    fn implicit_session(&self, view: View, owner: &Implicit) -> Option<Arc<ClientSession>> {
        let mut modern = lock(&self.modern);
        let key = (view, owner.clone());
        if !modern.contains_key(&key) && modern.len() >= self.max_sessions {
            return None;
        }
        let principal = match owner {
            Implicit::Principal(p) => Some(Arc::clone(p)),
            Implicit::Client(_) => None,
        };
        let sess = modern
            .entry(key)
            .or_insert_with(|| self.new_session(view, principal, true))
            .clone();
        *lock(&sess.last_used) = Instant::now();
        Some(sess)
    }
}

/// A modern answer as 2026-07-28 has it: its result with `resultType: "complete"` (`basic/patterns/mrtr`), and on
/// lists and `resources/read` with `cacheScope: "private"`, `ttlMs: 0`.
fn finish(method: &str, answer: &mut Answer) {
    let cacheable = method.ends_with("/list") || method == "resources/read";
    if !cacheable {
        // A relayed result goes as the server wrote it, `resultType` added in front.
        answer.complete_result_type();
    }
    if cacheable && matches!(answer, Answer::Relayed { .. }) {
        let relayed = std::mem::replace(answer, Answer::Built(Value::Null));
        *answer = Answer::Built(relayed.into_value());
    }
    let Answer::Built(answer) = answer else {
        return;
    };
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result
            .entry("resultType")
            .or_insert_with(|| Value::String("complete".to_owned()));
        if method.ends_with("/list") || method == "resources/read" {
            // 2026-07-28 `schema` (cacheable results, SEP-2549: lists and `ReadResourceResult` must carry both):
            // a merged list is never cached across clients or reused (a server leaving or returning changes it
            // at once), and a legacy server gives no hint for a resource.
            result.insert("cacheScope".to_owned(), json!("private"));
            result.insert("ttlMs".to_owned(), json!(0));
        }
    }
}

/// The checks a 2026-07-28 server makes before it runs a request (here, where the gateway is that server), each
/// with the HTTP status and JSON-RPC error the spec and the conformance suite (0.2.0-alpha, SEP-2575 and SEP-2243)
/// name; `None` when the request passes:
///
/// - `_meta` must carry the protocol version and the client capabilities (2026-07-28 `basic/index` §`_meta`): 400
///   + -32602;
/// - an `MCP-Protocol-Version` header that differs from `_meta`'s is a header mismatch (`basic/transports/
///   streamable-http` §Server Validation): 400 + -32020;
/// - `Mcp-Method` is required on every request, `Mcp-Name` on `tools/call`, `prompts/get` and `resources/read`
///   (§Standard Request Headers; their values were compared with the body by `edge::check_mirrored_headers`
///   already): 400 + -32020;
/// - a method 2026-07-28 does not have (§Method Not Found): 404 + -32601.
fn invalid(
    call: &Call,
    version: &str,
    method: &str,
    params: &Value,
    id: &Value,
) -> Option<http::Response<Body>> {
    let refuse = |status: StatusCode, code: i64, message: &str| {
        Some(body::json_response(
            status,
            &error(id, code, message, Value::Null),
        ))
    };
    let meta = &params["_meta"];
    let Some(declared) = meta[era::META_PROTOCOL_VERSION].as_str() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            super::INVALID_PARAMS,
            "Invalid params: _meta must carry io.modelcontextprotocol/protocolVersion",
        );
    };
    if call
        .protocol_version
        .as_deref()
        .is_some_and(|h| h != declared)
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            era::modern_error::HEADER_MISMATCH,
            "Header mismatch: MCP-Protocol-Version differs from _meta's protocol version",
        );
    }
    if version != era::MODERN_VERSION {
        return None; // answered with the supported versions by the caller
    }
    if !meta[era::META_CLIENT_CAPABILITIES].is_object() {
        return refuse(
            StatusCode::BAD_REQUEST,
            super::INVALID_PARAMS,
            "Invalid params: _meta must carry io.modelcontextprotocol/clientCapabilities",
        );
    }
    let names_one = matches!(method, "tools/call" | "prompts/get" | "resources/read");
    if !call.mirrored.method || (names_one && !call.mirrored.name) {
        return refuse(
            StatusCode::BAD_REQUEST,
            era::modern_error::HEADER_MISMATCH,
            "Header mismatch: a 2026-07-28 request must carry Mcp-Method (and Mcp-Name for the name it acts on)",
        );
    }
    if !MODERN_METHODS.contains(&method) {
        return refuse(
            StatusCode::NOT_FOUND,
            super::METHOD_NOT_FOUND,
            &format!("Method not found: {method}"),
        );
    }
    None
}
