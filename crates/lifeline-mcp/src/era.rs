//! Protocol eras and versions (2026-07-28 `basic/versioning`).
//!
//! *Modern* versions (2026-07-28 and later) carry version, identity and capabilities in every request's `_meta`
//! and have no session; *legacy* versions (2025-11-25 and earlier) open a session with `initialize`. The
//! deprecated 2024-11-05 HTTP+SSE transport is reported as its own era, `sse`, because everything about probing
//! it differs.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

/// The modern protocol version Lifeline speaks.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The legacy protocol version Lifeline offers in `initialize`.
pub const LATEST_LEGACY_VERSION: &str = "2025-11-25";
/// Every legacy version Lifeline accepts when a server answers `initialize` with it, newest first
/// (2025-11-25 `basic/lifecycle` §Version Negotiation: the server may answer with another version it supports).
pub const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` key for the protocol version of a modern request (2026-07-28 `basic/index` §`_meta`).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key for the client's identity.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key for the client's capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key for the server's identity in a `DiscoverResult` (2026-07-28 `server/discover`).
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key for the lowest severity of the log messages a modern request asks for (2026-07-28
/// `server/utilities/logging` §Per-request log level; without it a server sends none).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// JSON-RPC error codes the 2026-07-28 revision defines (`basic/index` §Error Codes). A reply carrying one of
/// them identifies a modern server (`basic/versioning` §Backward Compatibility).
pub mod modern_error {
    /// `HeaderMismatch`.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// `MissingRequiredClientCapability`.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// `UnsupportedProtocolVersion`; `data.supported` lists the versions the server speaks.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

    /// True for the codes above.
    pub fn is_recognized(code: i64) -> bool {
        matches!(
            code,
            HEADER_MISMATCH | MISSING_REQUIRED_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION
        )
    }
}

/// Which era a server speaks, as detected by a probe. Serialised `modern`, `legacy`, `sse`.
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
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Era {
    /// 2026-07-28 or later: stateless, `server/discover`.
    Modern,
    /// 2025-03-26 … 2025-11-25 over Streamable HTTP, or any legacy version over stdio: `initialize` + session.
    Legacy,
    /// The deprecated 2024-11-05 HTTP+SSE transport.
    Sse,
}

impl Era {
    /// The stable label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What the caller already knows about the era, to skip detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EraHint {
    /// Detect: modern first, then legacy `initialize`, then HTTP+SSE (the order of 2026-07-28
    /// `basic/transports/streamable-http` §Backward Compatibility).
    #[default]
    Auto,
    /// Only the modern era.
    Modern,
    /// Only the legacy `initialize` handshake over Streamable HTTP (or stdio).
    Legacy,
    /// Only the HTTP+SSE transport.
    Sse,
}

/// The transport a probe used. Serialised `streamable_http`, `http_sse`, `stdio`.
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
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TransportKind {
    /// One MCP endpoint that takes POST (2025-03-26 and later).
    StreamableHttp,
    /// GET an SSE stream, POST to the `endpoint` it names (2024-11-05).
    HttpSse,
    /// Newline-delimited JSON-RPC on a child's stdin/stdout.
    Stdio,
}

impl TransportKind {
    /// The stable label, as serialised (`"streamable_http"`, `"http_sse"`, `"stdio"`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A mirrored header value (`Mcp-Name`, `Mcp-Method`) as 2026-07-28 `streamable-http` §Value Encoding sends it:
/// plain when trimmed printable ASCII that does not look like the sentinel, else `=?base64?…?=` (also used by the
/// gateway's federation toward modern servers).
pub use crate::probe::streamable::encode_header_value;

/// The `_meta` object every modern request carries (2026-07-28 `basic/index` §`_meta`, `server/discover`).
pub fn modern_meta(client_name: &str, client_version: &str) -> Value {
    json!({
        META_PROTOCOL_VERSION: MODERN_VERSION,
        META_CLIENT_INFO: { "name": client_name, "version": client_version },
        META_CLIENT_CAPABILITIES: {},
    })
}

/// `params` for a modern request: `extra` (an object, or `Null`) with `_meta` added.
pub fn modern_params(extra: Value, client_name: &str, client_version: &str) -> Value {
    let mut map = match extra {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("_meta".to_owned(), modern_meta(client_name, client_version));
    Value::Object(map)
}

/// `params` for a legacy `initialize` offering [`LATEST_LEGACY_VERSION`] (2025-11-25 `basic/lifecycle`).
pub fn initialize_params(client_name: &str, client_version: &str) -> Value {
    json!({
        "protocolVersion": LATEST_LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": { "name": client_name, "version": client_version },
    })
}

/// True when `v` is a legacy version Lifeline speaks.
pub fn is_known_legacy(v: &str) -> bool {
    LEGACY_VERSIONS.contains(&v)
}
