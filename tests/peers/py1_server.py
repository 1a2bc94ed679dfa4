"""A legacy-only MCP tool server on the official Python SDK 1.x (`mcp==1.30.0`, `FastMCP`), for Lifeline's tests.

Installed into `.peers/py1` (beside `mcp-proxy==0.13.0`, which needs `mcp<2`) by `scripts/install-peers.sh`;
launched by `lifeline-testkit` (`Peer::python_legacy`).

Tools (same set as `py2_server.py`): echo(message), add(a, b), slow_progress(steps, delay_ms), fail().

Modes (`LIFELINE_PEER_MODE`, or argv[1] when run as a script):
  stateful   Streamable HTTP at /mcp with legacy sessions (Mcp-Session-Id), SSE-framed replies
  stateless  Streamable HTTP at /mcp, no sessions
  sse        the deprecated 2024-11-05 HTTP+SSE transport: `GET /sse` opens the stream, whose first event
             (`endpoint`) names `/messages/?session_id=...` for the POSTs
  stdio      newline-delimited JSON-RPC on stdin/stdout

Extra route: `GET /debug/sessions` -> `{"active": N}`: in stateful mode the sessions the SDK's
`StreamableHTTPSessionManager` holds (`_server_instances`); in sse mode the open `GET /sse` streams (counted by
a small ASGI wrapper here, since the SDK keeps its SSE transport private to `sse_app`); 0 in stateless mode.

HTTP use: `python -m uvicorn --factory py1_server:create_app --host 127.0.0.1 --port P` with
`LIFELINE_PEER_MODE` set, or `python py1_server.py MODE PORT` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

HTTP_MODES = ("stateful", "stateless", "sse")


def build_server(mode: str) -> FastMCP:
    """The tool server; `mode` only matters for the HTTP transports."""
    server = FastMCP(
        name="lifeline-py1-peer",
        host="127.0.0.1",
        stateless_http=(mode == "stateless"),
    )

    @server.tool(description="Echo the message back as text.")
    def echo(message: str) -> str:
        return message

    @server.tool(description="Add two numbers.")
    def add(a: float, b: float) -> float:
        total = a + b
        return int(total) if float(total).is_integer() else total

    @server.tool(description="Send `steps` progress notifications `delay_ms` apart, then return.")
    async def slow_progress(steps: int, delay_ms: int, ctx: Context) -> str:
        steps = max(0, min(steps, 1000))
        for i in range(1, steps + 1):
            await asyncio.sleep(max(0, delay_ms) / 1000)
            await ctx.report_progress(i, steps, f"step {i}/{steps}")
        return f"done after {steps} steps"

    @server.tool(description="Always fails: the result has isError true.")
    def fail() -> str:
        raise ToolError("this tool always fails")

    return server


class _SseStreamCounter:
    """ASGI wrapper counting the `GET /sse` streams currently open."""

    def __init__(self, app):
        self.app = app
        self.active = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/sse":
            self.active += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.active -= 1
        else:
            await self.app(scope, receive, send)


def create_app(mode: str | None = None):
    """uvicorn factory: the ASGI app for `mode` (default from `LIFELINE_PEER_MODE`, else `stateful`)."""
    mode = mode or os.environ.get("LIFELINE_PEER_MODE", "stateful")
    if mode not in HTTP_MODES:
        raise SystemExit(f"py1_server: unknown HTTP mode {mode!r}; expected one of {HTTP_MODES}")
    server = build_server(mode)
    counter: _SseStreamCounter | None = None

    @server.custom_route("/debug/sessions", methods=["GET"])
    async def debug_sessions(_request: Request) -> Response:
        if mode == "sse":
            active = counter.active if counter is not None else 0
        else:
            # Private SDK attribute (mcp 1.30.0, mcp/server/streamable_http_manager.py): session id -> transport.
            active = len(server.session_manager._server_instances)  # noqa: SLF001
        return JSONResponse({"active": active, "mode": mode})

    if mode == "sse":
        counter = _SseStreamCounter(server.sse_app())
        return counter
    return server.streamable_http_app()


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LIFELINE_PEER_MODE", "stateful")
    if mode == "stdio":
        asyncio.run(build_server(mode).run_stdio_async())
        return
    port = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("PORT", "0"))
    import uvicorn

    uvicorn.run(create_app(mode), host="127.0.0.1", port=port, timeout_graceful_shutdown=2, log_level="warning")


if __name__ == "__main__":
    main()
