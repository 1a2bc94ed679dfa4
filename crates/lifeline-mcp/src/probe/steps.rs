//! The MCP steps every transport shares: accepting a legacy `initialize` result, and once the handshake is done
//! `tools/list` with pagination, `ping`, the opt-in `tools/call`; and the mapping of JSON-RPC outcomes to
//! failures.

use serde_json::{json, Value};

use super::ctx::Ctx;
use super::report::{Failure, Phase, ServerInfo, ToolCallOutcome};
use crate::era::{self, modern_error, Era};
use crate::jsonrpc::RpcError;
use crate::verdict::{Reason, Warning};

/// A JSON-RPC conversation with one server, in one era, over one transport.
pub(crate) trait Channel {
    /// Sends a request and returns its `result`; a JSON-RPC error becomes a failure (see [`rpc_failure`]).
    async fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure>;

    /// True for the modern era (no `ping`).
    fn is_modern(&self) -> bool;

    /// Sends one request with a foreign `Origin` and reports whether the server served it (HTTP only).
    async fn origin_check(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// The failure for a JSON-RPC error answer: `unsupported_version` for `UnsupportedProtocolVersion` (-32022),
/// `rpc_error` with code and message otherwise.
pub(crate) fn rpc_failure(phase: Phase, method: &str, e: RpcError) -> Failure {
    let reason = if e.code == modern_error::UNSUPPORTED_PROTOCOL_VERSION {
        Reason::UnsupportedVersion
    } else {
        Reason::RpcError
    };
    Failure {
        reason,
        message: format!("{method} failed: {} (code {})", e.message, e.code),
        phase: Some(phase),
        http_status: None,
        rpc_code: Some(e.code),
        rpc_message: Some(e.message),
    }
}

/// Accepts the `result` of a legacy `initialize` (2025-11-25 `basic/lifecycle` §Initialization) for a session
/// in `era` ([`Era::Legacy`] over Streamable HTTP or stdio, [`Era::Sse`] over HTTP+SSE) and records on `ctx`
/// the era, the answered version, `serverInfo` and `capabilities`. Returns the answered version.
///
/// §Version Negotiation: the server may answer with another version it supports; one Lifeline does not speak
/// ends the probe. In [`Era::Legacy`] a version older than [`era::LATEST_LEGACY_VERSION`] warns
/// `old_protocol_version`; HTTP+SSE is the 2024-11-05 transport, already warned `deprecated_transport`.
///
/// Errors: `unsupported_version` in phase `initialize`, naming the answered version and
/// [`era::LEGACY_VERSIONS`].
pub(crate) fn accept_initialize(
    ctx: &mut Ctx<'_>,
    result: &Value,
    era: Era,
) -> Result<String, Failure> {
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !era::is_known_legacy(&version) {
        return Err(Failure::new(
            Reason::UnsupportedVersion,
            format!(
                "the server answered initialize with protocol version {version:?}; Lifeline speaks {}",
                era::LEGACY_VERSIONS.join(", ")
            ),
        )
        .in_phase(Phase::Initialize));
    }
    if era == Era::Legacy && version != era::LATEST_LEGACY_VERSION {
        ctx.warn(Warning::OldProtocolVersion);
    }
    ctx.era = Some(era);
    ctx.protocol_version = Some(version.clone());
    ctx.server_info = result.get("serverInfo").map(server_info);
    ctx.capabilities = result.get("capabilities").cloned();
    Ok(version)
}

/// The `serverInfo` object's `name` and `version`, each absent when missing or not a string.
pub(crate) fn server_info(v: &Value) -> ServerInfo {
    ServerInfo {
        name: v.get("name").and_then(Value::as_str).map(str::to_owned),
        version: v.get("version").and_then(Value::as_str).map(str::to_owned),
    }
}

/// Runs `tools/list` (all pages, up to the bound), `ping` (legacy only), the opt-in tool call and the origin
/// check, recording each step's time.
pub(crate) async fn after_handshake<C: Channel>(
    ch: &mut C,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let declares_tools = ctx
        .capabilities
        .as_ref()
        .is_none_or(|caps| caps.get("tools").is_some());
    if declares_tools {
        let t = ctx.clock(Phase::ToolsList);
        let tools = list_tools(ch, ctx).await;
        ctx.time(Phase::ToolsList, t);
        let tools = tools?;
        ctx.tools = Some(tools);
    }

    if !ch.is_modern() {
        // 2025-11-25 `basic/utilities/ping`: the receiver MUST respond promptly with an empty result. The modern
        // era has no ping (2026-07-28 changelog).
        let t = ctx.clock(Phase::Ping);
        let r = ch.call(ctx, Phase::Ping, "ping", Value::Null).await;
        ctx.time(Phase::Ping, t);
        r?;
    }

    if let Some(call) = ctx.opts.call.clone() {
        let t = ctx.clock(Phase::ToolsCall);
        let r = ch
            .call(
                ctx,
                Phase::ToolsCall,
                "tools/call",
                json!({ "name": call.name, "arguments": call.arguments }),
            )
            .await;
        ctx.time(Phase::ToolsCall, t);
        let result = r?;
        let is_error = result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ctx.tool_call = Some(ToolCallOutcome {
            name: call.name,
            is_error,
        });
    }

    if let Some(set) = ctx.opts.transactions.clone() {
        let reports = crate::transaction::run_all(ch, ctx, &set).await;
        ctx.transactions = Some(reports);
    }

    if ctx.opts.check_origin {
        let t = ctx.clock(Phase::OriginCheck);
        ch.origin_check(ctx).await;
        if ctx.timings.get(Phase::OriginCheck).is_none()
            && ctx.transport != Some(crate::TransportKind::Stdio)
        {
            ctx.time(Phase::OriginCheck, t);
        }
    }

    let declared_but_empty = declares_tools
        && ctx.capabilities.is_some()
        && ctx.tools.as_ref().is_some_and(Vec::is_empty);
    if declared_but_empty {
        return Err(Failure::new(
            Reason::NoTools,
            "the server declares the tools capability but lists no tools",
        )
        .in_phase(Phase::ToolsList));
    }
    Ok(())
}

async fn list_tools<C: Channel>(ch: &mut C, ctx: &mut Ctx<'_>) -> Result<Vec<Value>, Failure> {
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    // `server/utilities/pagination`: follow `nextCursor` until it is absent, bounded by max_tool_pages.
    for page in 0..ctx.opts.max_tool_pages.max(1) {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => Value::Null,
        };
        let result = ch.call(ctx, Phase::ToolsList, "tools/list", params).await?;
        let Some(list) = result.get("tools").and_then(Value::as_array) else {
            return Err(Failure::new(
                Reason::ProtocolError,
                "tools/list result has no tools array",
            )
            .in_phase(Phase::ToolsList));
        };
        tools.extend(list.iter().cloned());
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => {
                if page + 1 == ctx.opts.max_tool_pages.max(1) {
                    ctx.warn(Warning::ToolListTruncated);
                }
                cursor = Some(next.clone());
            }
            _ => break,
        }
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accept_initialize_records_the_handshake_and_warns_per_era() {
        // (era, answered version, accepted, warns old_protocol_version)
        let cases = [
            (Era::Legacy, "2025-11-25", true, false),
            (Era::Legacy, "2025-03-26", true, true),
            (Era::Sse, "2024-11-05", true, false),
            (Era::Legacy, "2099-01-01", false, false),
            (Era::Sse, "", false, false),
        ];
        for (era, version, accepted, warns) in cases {
            let opts = crate::ProbeOptions::default();
            let mut ctx = Ctx::new(&opts);
            let result = json!({
                "protocolVersion": version,
                "serverInfo": { "name": "s", "version": 7 },
                "capabilities": { "tools": {} },
            });
            let got = accept_initialize(&mut ctx, &result, era);
            let case = format!("{era:?} {version:?}");
            assert_eq!(
                ctx.warnings.contains(&Warning::OldProtocolVersion),
                warns,
                "{case}"
            );
            if !accepted {
                let f = got.expect_err(&case);
                assert_eq!(f.reason, Reason::UnsupportedVersion, "{case}");
                assert_eq!(f.phase, Some(Phase::Initialize), "{case}");
                assert!(
                    f.message
                        .contains(&format!("protocol version {version:?}; Lifeline speaks 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05")),
                    "{case}: {}",
                    f.message
                );
                assert_eq!(ctx.era, None, "{case}");
                assert_eq!(ctx.protocol_version, None, "{case}");
                continue;
            }
            assert_eq!(got.as_deref(), Ok(version), "{case}");
            assert_eq!(ctx.era, Some(era), "{case}");
            assert_eq!(ctx.protocol_version.as_deref(), Some(version), "{case}");
            let info = ctx.server_info.as_ref().expect("serverInfo");
            assert_eq!(info.name.as_deref(), Some("s"), "{case}");
            assert_eq!(info.version, None, "{case}: a non-string version is absent");
            assert_eq!(ctx.capabilities, Some(json!({ "tools": {} })), "{case}");
        }
    }
}
