"""An MCP server on the official Python SDK 2.x (`mcp==2.3.0`) whose tools declare `outputSchema` and return
`structuredContent`, some correctly and some not, for Lifeline's synthetic-transaction tests.

Installed with the py2 venv by `scripts/install-peers.sh` (no extra packages); launched by `lifeline-testkit`
(`Peer::python_tools`, `Peer::python_tools_stdio_command`).

Tools (all but `write_note` declare `readOnlyHint: true`):
  search(query)      -> structured {"items": [{"id", "title"}]}: two items for "lifeline-canary", none otherwise
  fetch(id)          -> structured {"id", "body"}; an unknown id is a tool error (`isError: true`)
  wrong_shape()      -> declares {"items": [...]} but returns {"items": "not-a-list"} (schema violation)
  no_structure()     -> declares an outputSchema but returns no structuredContent (schema violation)
  failing()          -> `isError: true`
  slow(delay_ms)     -> sleeps, then structured {"slept_ms": N}
  ask()              -> an InputRequiredResult (`resultType: "input_required"`, 2026-07-28 requests only)
  write_note(text)   -> structured {"stored": true}; no readOnlyHint (a side effect, for the safety gate)
Resource: `status://health` -> JSON text {"status": "ok"}. Unknown URIs are a JSON-RPC error.
Prompt: `greet(name)` -> one user message "Hello, NAME!".
Extra HTTP route: `GET /health` -> 200 `{"status": "ok"}` (a plain HTTP dependency for the gateway's /ready).

Modes (`LIFELINE_PEER_MODE`, or argv[1] when run as a script): `stateful`, `stateless` (also answers 2026-07-28
requests), `stdio`. HTTP: `python -m uvicorn --factory py2_tools_server:create_app --host 127.0.0.1 --port 0`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

from typing_extensions import TypedDict

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

HTTP_MODES = ("stateful", "stateless")
READ_ONLY = ToolAnnotations(readOnlyHint=True)


class Item(TypedDict):
    id: str
    title: str


class SearchResult(TypedDict):
    items: list[Item]


class Doc(TypedDict):
    id: str
    body: str


class Slept(TypedDict):
    slept_ms: int


class Stored(TypedDict):
    stored: bool


DOCS = {"doc-1": "first canary document", "doc-2": "second canary document"}


def build_server() -> MCPServer:
    """The server, transport-agnostic."""
    server = MCPServer(name="lifeline-py2-tools", version="2.3.0-tools")

    @server.tool(description="Search the canary index.", annotations=READ_ONLY)
    def search(query: str) -> SearchResult:
        if query != "lifeline-canary":
            return {"items": []}
        return {"items": [{"id": k, "title": v} for k, v in DOCS.items()]}

    @server.tool(description="Fetch one document by id.", annotations=READ_ONLY)
    def fetch(id: str) -> Doc:  # noqa: A002 - the argument name is part of the tool's schema
        if id not in DOCS:
            raise ToolError(f"no document {id!r}")
        return {"id": id, "body": DOCS[id]}

    @server.tool(description="Declares a list of items, returns a string.", annotations=READ_ONLY)
    def wrong_shape() -> Annotated[CallToolResult, SearchResult]:
        return CallToolResult(
            content=[TextContent(type="text", text='{"items": "not-a-list"}')],
            structured_content={"items": "not-a-list"},
        )

    @server.tool(description="Declares an outputSchema, returns only text.", annotations=READ_ONLY)
    def no_structure() -> Annotated[CallToolResult, SearchResult]:
        return CallToolResult(content=[TextContent(type="text", text="just text")])

    @server.tool(description="Always fails: the result has isError true.", annotations=READ_ONLY)
    def failing() -> str:
        raise ToolError("the upstream API answered 500")

    @server.tool(description="Sleep delay_ms milliseconds, then answer.", annotations=READ_ONLY)
    async def slow(delay_ms: int) -> Slept:
        delay_ms = max(0, min(delay_ms, 60_000))
        await asyncio.sleep(delay_ms / 1000)
        return {"slept_ms": delay_ms}

    @server.tool(description="Always asks the client for input first.", annotations=READ_ONLY)
    def ask() -> InputRequiredResult:
        return InputRequiredResult(request_state="lifeline-test-state")

    @server.tool(description="Stores a note (a side effect: no readOnlyHint).")
    def write_note(text: str) -> Stored:
        return {"stored": bool(text) or True}

    @server.resource("status://health", mime_type="application/json")
    def health() -> str:
        return '{"status": "ok"}'

    @server.prompt(description="Greets someone.")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    # The SDK validates a returned CallToolResult against the declared model; these two must misbehave on the
    # wire, so keep the published outputSchema and drop the model (FuncMetadata's fields are read live).
    for name in ("wrong_shape", "no_structure"):
        server._tool_manager.get_tool(name).fn_metadata.output_model = None  # noqa: SLF001

    return server


def create_app(mode: str | None = None):
    """uvicorn factory: the Starlette app for `mode` (default from `LIFELINE_PEER_MODE`, else `stateful`)."""
    mode = mode or os.environ.get("LIFELINE_PEER_MODE", "stateful")
    if mode not in HTTP_MODES:
        raise SystemExit(f"py2_tools_server: unknown HTTP mode {mode!r}; expected one of {HTTP_MODES}")
    server = build_server()

    @server.custom_route("/health", methods=["GET"])
    async def health_route(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return server.streamable_http_app(stateless_http=(mode == "stateless"), host="127.0.0.1")


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
