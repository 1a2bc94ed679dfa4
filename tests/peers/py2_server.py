"""A small MCP tool server on the official Python SDK 2.x (`mcp==2.3.0`), for Lifeline's integration tests.

Installed into `.peers/py2` by `scripts/install-peers.sh`; launched by `lifeline-testkit` (`Peer::python`).

Tools (same set in `py1_server.py`):
  echo(message)                 -> text content equal to `message`
  add(a, b)                     -> text content with the sum (also structured `{"result": sum}`)
  slow_progress(steps, delay_ms)-> sends `steps` progress notifications `delay_ms` apart, then "done after N steps"
  fail()                        -> a result with `isError: true`

Modes (`LIFELINE_PEER_MODE`, or argv[1] when run as a script):
  stateful   Streamable HTTP at /mcp, legacy sessions (Mcp-Session-Id), SSE-framed replies
  stateless  Streamable HTTP at /mcp, no sessions; answers 2026-07-28 requests (`server/discover`, ...)
  json       like `stateful` but replies are plain `application/json`
  stdio      newline-delimited JSON-RPC on stdin/stdout

Tool-set variants (`LIFELINE_PEER_TOOLS`, for the blue-green gate's tests; unset: the set above):
  additive   the set above plus multiply(a, b)            (an additive drift)
  breaking   add(a, b, c) takes a third required argument (a breaking drift)

Note: mcp 2.3.0 routes any request whose `MCP-Protocol-Version` header is not a handshake-era version
(2024-11-05 .. 2025-11-25) to its modern (2026-07-28) handler in *every* HTTP mode, stateful included.

Extra route: `GET /debug/sessions` -> `{"active": N}`, the number of legacy sessions the SDK's
`StreamableHTTPSessionManager` holds (`_server_instances`), so tests can prove a probe leaves none behind.

Tool calls are counted, so a test can prove a refused call never ran: `GET /debug/calls` -> `{"echo": N, ...}`
(tools run since start; `slow_progress:cancelled` and `slow_progress:done` count the runs that a cancellation
reached and those that ran to their end), and every run writes `py2_server: tool NAME called` to stderr (the gateway logs a stdio
child's stderr, so the same proof works over stdio).

Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the SDK's spans go to that OTLP/HTTP receiver (`otel_setup.py`).

HTTP use: `python -m uvicorn --factory py2_server:create_app --host 127.0.0.1 --port P` with
`LIFELINE_PEER_MODE` set, or `python py2_server.py MODE PORT` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import os
import sys

import otel_setup
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

HTTP_MODES = ("stateful", "stateless", "json")

# Tool runs since start, by tool name (see the module docs).
CALLS: dict[str, int] = {}


def _called(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1
    print(f"py2_server: tool {name} called", file=sys.stderr, flush=True)

otel_setup.configure()


def build_server() -> MCPServer:
    """The tool server, transport-agnostic."""
    server = MCPServer(name="lifeline-py2-peer", version="2.3.0-peer")

    @server.tool(description="Echo the message back as text.")
    def echo(message: str) -> str:
        _called("echo")
        return message

    variant = os.environ.get("LIFELINE_PEER_TOOLS", "")
    if variant == "breaking":

        @server.tool(description="Add two numbers.")
        def add(a: float, b: float, c: float) -> float:
            _called("add")
            total = a + b + c
            return int(total) if float(total).is_integer() else total

    else:

        @server.tool(description="Add two numbers.")
        def add(a: float, b: float) -> float:
            _called("add")
            total = a + b
            return int(total) if float(total).is_integer() else total

    if variant == "additive":

        @server.tool(description="Multiply two numbers.")
        def multiply(a: float, b: float) -> float:
            _called("multiply")
            total = a * b
            return int(total) if float(total).is_integer() else total

    @server.tool(description="Send `steps` progress notifications `delay_ms` apart, then return.")
    async def slow_progress(steps: int, delay_ms: int, ctx: Context) -> str:
        _called("slow_progress")
        steps = max(0, min(steps, 1000))
        try:
            for i in range(1, steps + 1):
                await asyncio.sleep(max(0, delay_ms) / 1000)
                await ctx.report_progress(i, steps, f"step {i}/{steps}")
        except asyncio.CancelledError:
            # Counted as `slow_progress:cancelled` in /debug/calls: a cancellation reached the tool.
            _called("slow_progress:cancelled")
            raise
        # Counted as `slow_progress:done`: the tool ran to its end (nobody cancelled it).
        _called("slow_progress:done")
        return f"done after {steps} steps"

    @server.tool(description="Always fails: the result has isError true.")
    def fail() -> str:
        _called("fail")
        raise ToolError("this tool always fails")

    return server


def create_app(mode: str | None = None):
    """uvicorn factory: the Starlette app for `mode` (default from `LIFELINE_PEER_MODE`, else `stateful`)."""
    mode = mode or os.environ.get("LIFELINE_PEER_MODE", "stateful")
    if mode not in HTTP_MODES:
        raise SystemExit(f"py2_server: unknown HTTP mode {mode!r}; expected one of {HTTP_MODES}")
    server = build_server()

    @server.custom_route("/debug/sessions", methods=["GET"])
    async def debug_sessions(_request: Request) -> Response:
        # Private SDK attribute (mcp 2.3.0, mcp/server/streamable_http_manager.py): session id -> transport.
        # Stateless mode never registers sessions there, so it always reports 0.
        active = len(server.session_manager._server_instances)  # noqa: SLF001
        return JSONResponse({"active": active, "mode": mode})

    @server.custom_route("/debug/calls", methods=["GET"])
    async def debug_calls(_request: Request) -> Response:
        return JSONResponse(CALLS)

    return server.streamable_http_app(
        stateless_http=(mode == "stateless"),
        json_response=(mode == "json"),
        host="127.0.0.1",
    )


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LIFELINE_PEER_MODE", "stateful")
    if mode == "stdio":
        asyncio.run(build_server().run_stdio_async())
        return
    port = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("PORT", "0"))
    import uvicorn

    uvicorn.run(create_app(mode), host="127.0.0.1", port=port, timeout_graceful_shutdown=2, log_level="warning")


if __name__ == "__main__":
    main()
