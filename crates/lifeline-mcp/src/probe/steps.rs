//! The MCP steps every transport shares once the handshake is done: `tools/list` with pagination, `ping`, the
//! opt-in `tools/call`; and the mapping of JSON-RPC outcomes to failures.

use std::time::Instant;

use serde_json::{json, Value};

use super::ctx::Ctx;
use super::report::{Failure, Phase, ToolCallOutcome};
use crate::era::modern_error;
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
        let t = Instant::now();
        let tools = list_tools(ch, ctx).await;
        ctx.time(Phase::ToolsList, t);
        let tools = tools?;
        ctx.tools = Some(tools);
    }

    if !ch.is_modern() {
        // 2025-11-25 `basic/utilities/ping`: the receiver MUST respond promptly with an empty result. The modern
        // era has no ping (2026-07-28 changelog).
        let t = Instant::now();
        let r = ch.call(ctx, Phase::Ping, "ping", Value::Null).await;
        ctx.time(Phase::Ping, t);
        r?;
    }

    if let Some(call) = ctx.opts.call.clone() {
        let t = Instant::now();
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

    if ctx.opts.check_origin {
        let t = Instant::now();
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
