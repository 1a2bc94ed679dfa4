//! A canned stdio MCP server for the stdio benchmark (`BENCH_SERVER=canned`): the bench executable runs itself
//! with the argument [`ARG`] and becomes this server (an argument, not a variable: the proxies under test give
//! their children only the environment they choose). It answers `initialize`, `ping` and `tools/list` (the same two tools as
//! the gateway bench's fast upstream) from memory, ignores notifications, and answers anything else with
//! -32601, so `server/discover` marks it legacy-only. Like the gateway bench's in-process upstream, it is there
//! so that what the bench measures is the proxies, not the MCP server: the real servers spend hundreds of
//! microseconds of CPU per `tools/list`, which caps every proxy on two cores.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

/// The argument that turns the bench executable into this server.
pub(crate) const ARG: &str = "--canned-stdio-server";

/// Serves stdin/stdout until stdin closes (the stdio transport's shutdown, 2025-11-25 `basic/lifecycle`).
pub(crate) fn serve() {
    let tools = json!({"tools": [
        {"name": "echo", "description": "Echoes the message back.", "inputSchema": {"type": "object",
         "properties": {"message": {"type": "string"}}, "required": ["message"]}},
        {"name": "add", "description": "Adds two numbers.", "inputSchema": {"type": "object",
         "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}
    ]});
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let Ok(line) = line else { return };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id").cloned() else {
            continue; // a notification
        };
        let reply = match msg.get("method").and_then(Value::as_str) {
            Some("initialize") => json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": msg.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-11-25")),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "canned", "version": "1"}}}),
            Some("tools/list") => json!({"jsonrpc": "2.0", "id": id, "result": tools}),
            Some("ping") => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            Some(_) => json!({"jsonrpc": "2.0", "id": id,
                              "error": {"code": -32601, "message": "Method not found"}}),
            None => continue, // a response to a request this server never sends
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}
