"""The fixture server the official conformance suite's *server* scenarios expect, on the Python SDK 2.x (`mcp==2.3.0`).

`@modelcontextprotocol/conformance server --url URL` calls fixed names (`test_simple_text`, `test://static-text`,
`test_simple_prompt`, ...); no public server implements them, so Lifeline keeps its own. Launched by
`lifeline-testkit` (`Peer::conformance_fixture`); `crates/lifeline-gateway/tests/it/conformance.rs` runs the suite
against it directly and through `lifeline gateway`.

Deliberately **without** DNS-rebinding protection: the SDK turns its Host/Origin check on by itself for
`host="127.0.0.1"`, and this fixture turns it off (`enable_dns_rebinding_protection=False`), so the suite's
`dns-rebinding-protection` scenario fails directly and the test can show that the gateway adds the check.

Served as stateful Streamable HTTP at /mcp (legacy sessions, SSE-framed replies):
  python -m uvicorn --factory conformance_fixture:create_app --app-dir tests/peers --host 127.0.0.1 --port P
or over stdio (newline-delimited JSON-RPC; the same server, for `lifeline gateway -- CMD`):
  python tests/peers/conformance_fixture.py --stdio
Over stdio `test_reconnection` cannot close a stream (there is none): it just answers. Over HTTP,
`GET /debug/log-levels` lists the levels `logging/setLevel` received, in order (for the gateway's bridge tests).

What each scenario needs (from the scenario descriptions in @modelcontextprotocol/conformance 0.1.16):
  tools       test_simple_text, test_image_content, test_audio_content, test_embedded_resource,
              test_multiple_content_types, test_tool_with_logging (3 info logs ~50 ms apart),
              test_tool_with_progress (0, 50, 100 of 100), test_error_handling (isError), test_sampling(prompt),
              test_elicitation(message), test_elicitation_sep1034_defaults, test_elicitation_sep1330_enums
  resources   test://static-text, test://static-binary, template test://template/{id}/data,
              subscribe/unsubscribe (test://watched-resource)
  prompts     test_simple_prompt, test_prompt_with_arguments(arg1, arg2),
              test_prompt_with_embedded_resource(resourceUri), test_prompt_with_image
  utilities   logging/setLevel, completion/complete, ping (the SDK's own)
  pending     json_schema_2020_12_tool (`$schema`, `$defs`, `additionalProperties` kept in tools/list) and
              test_reconnection (closes its POST SSE stream mid-call; the result is replayed on a GET with
              Last-Event-ID from the in-memory event store), for `--suite all`
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import sys

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# A 1x1 red PNG and a 44-byte silent WAV header with no samples: the smallest valid payloads of each type.
RED_PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SILENT_WAV = (
    b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    + b"data" + (0).to_bytes(4, "little")
)


# The levels `logging/setLevel` asked for, in order (GET /debug/log-levels).
LEVELS_SET: list[str] = []


class MemoryEventStore(EventStore):
    """Keeps every SSE event in memory, bounded, so a client (or the gateway on its behalf) can resume a stream."""

    MAX_EVENTS = 10_000

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        # event id -> (stream id, message or None for a priming event), oldest first
        self._events: dict[str, tuple[str, types.JSONRPCMessage | None]] = {}

    async def store_event(self, stream_id, message):
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self.MAX_EVENTS:
            self._events.pop(next(iter(self._events)))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback: EventCallback):
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        after = False
        for event_id, (stream, message) in list(self._events.items()):
            if after and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
            after = after or event_id == last_event_id
        return stream_id


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def image_block() -> types.ImageContent:
    return types.ImageContent(type="image", data=b64(RED_PIXEL_PNG), mime_type="image/png")


def build_server() -> MCPServer:
    """The fixture, transport-agnostic."""
    server = MCPServer(name="lifeline-conformance-fixture", version="1.0.0")
    lowlevel = server._lowlevel_server  # noqa: SLF001 - MCPServer has no public hook for these three methods

    # --- tools -------------------------------------------------------------------------------------------------

    @server.tool(description="Returns a simple text response.")
    def test_simple_text() -> types.CallToolResult:
        return text_result("This is a simple text response for testing.")

    @server.tool(description="Returns a 1x1 red PNG.")
    def test_image_content() -> types.CallToolResult:
        return types.CallToolResult(content=[image_block()])

    @server.tool(description="Returns a tiny WAV.")
    def test_audio_content() -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.AudioContent(type="audio", data=b64(SILENT_WAV), mime_type="audio/wav")]
        )

    @server.tool(description="Returns an embedded text resource.")
    def test_embedded_resource() -> types.CallToolResult:
        resource = types.TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return types.CallToolResult(content=[types.EmbeddedResource(type="resource", resource=resource)])

    @server.tool(description="Returns text, an image and an embedded resource.")
    def test_multiple_content_types() -> types.CallToolResult:
        resource = types.TextResourceContents(
            uri="test://mixed-content-resource", mime_type="application/json", text='{"test":"data","value":123}'
        )
        return types.CallToolResult(
            content=[
                types.TextContent(type="text", text="Multiple content types test:"),
                image_block(),
                types.EmbeddedResource(type="resource", resource=resource),
            ]
        )

    @server.tool(description="Sends three info log notifications ~50 ms apart while it runs.")
    async def test_tool_with_logging(ctx: Context) -> types.CallToolResult:
        await ctx.info("Tool execution started")
        await asyncio.sleep(0.05)
        await ctx.info("Tool processing data")
        await asyncio.sleep(0.05)
        await ctx.info("Tool execution completed")
        return text_result("Tool with logging executed successfully")

    @server.tool(description="Reports progress 0, 50 and 100 of 100, ~50 ms apart.")
    async def test_tool_with_progress(ctx: Context) -> types.CallToolResult:
        # report_progress is a no-op when the request carried no progressToken.
        await ctx.report_progress(0, 100)
        await asyncio.sleep(0.05)
        await ctx.report_progress(50, 100)
        await asyncio.sleep(0.05)
        await ctx.report_progress(100, 100)
        return text_result("Tool with progress executed successfully")

    @server.tool(description="Always fails: the result has isError true.")
    def test_error_handling() -> str:
        raise ToolError("This tool intentionally returns an error for testing")

    @server.tool(description="Asks the client to sample an LLM with the prompt.")
    async def test_sampling(prompt: str, ctx: Context) -> types.CallToolResult:
        result = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        content = result.content
        reply = content.text if isinstance(content, types.TextContent) else str(content)
        return text_result(f"LLM response: {reply}")

    @server.tool(description="Asks the client for a username and an email.")
    async def test_elicitation(message: str, ctx: Context) -> types.CallToolResult:
        schema = {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        }
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        return text_result(f"User response: action={result.action}, content={result.content}")

    @server.tool(description="Elicits a form whose fields carry defaults of every primitive type (SEP-1034).")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> types.CallToolResult:
        schema = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "default": True},
            },
        }
        result = await ctx.session.elicit_form("Defaults test", schema, related_request_id=ctx.request_id)
        return text_result(f"Elicitation completed: action={result.action}, content={result.content}")

    @server.tool(description="Elicits a form with all five enum shapes (SEP-1330).")
    async def test_elicitation_sep1330_enums(ctx: Context) -> types.CallToolResult:
        schema = {
            "type": "object",
            "properties": {
                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {
                    "type": "string",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
        }
        result = await ctx.session.elicit_form("Enums test", schema, related_request_id=ctx.request_id)
        return text_result(f"Elicitation completed: action={result.action}, content={result.content}")

    @server.tool(description="Closes its SSE stream mid-call; the result arrives after the client resumes.")
    async def test_reconnection(ctx: Context) -> types.CallToolResult:
        await asyncio.sleep(0.05)
        # A no-op unless the request's protocol version is 2025-11-25 or later and an event store is configured.
        await ctx.close_sse_stream()
        await asyncio.sleep(0.1)
        return text_result("Reconnection test completed")

    @server.tool(description="Tool with JSON Schema 2020-12 features")
    def json_schema_2020_12_tool(name: str = "", address: dict | None = None) -> str:
        return f"name={name}, address={address}"

    # MCPServer derives inputSchema from the signature; replace it with the 2020-12 schema the scenario checks for in
    # tools/list: `$schema`, `$defs`, `additionalProperties: false` (SEP-1613) and, for the 0.2 suite, `$anchor`,
    # `allOf`/`anyOf` and `if`/`then`/`else` (SEP-2106).
    server._tool_manager.get_tool("json_schema_2020_12_tool").parameters = {  # noqa: SLF001
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": False,
    }

    # --- resources ---------------------------------------------------------------------------------------------

    @server.resource("test://static-text", name="static-text", description="A static text resource.",
                     mime_type="text/plain")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", name="static-binary", description="A static PNG.",
                     mime_type="image/png")
    def static_binary() -> bytes:
        return RED_PIXEL_PNG

    @server.resource("test://watched-resource", name="watched-resource",
                     description="A resource clients may subscribe to.", mime_type="text/plain")
    def watched_resource() -> str:
        return "Watched resource content."

    @server.resource("test://template/{id}/data", name="template-data",
                     description="Data for an id, from a template.", mime_type="application/json")
    def template_data(id: str) -> str:  # noqa: A002 - the URI template names it `id`
        return f'{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}'

    subscribed: set[str] = set()

    async def on_subscribe(_ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        subscribed.add(str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(_ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscribed.discard(str(params.uri))
        return types.EmptyResult()

    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)

    # --- prompts -----------------------------------------------------------------------------------------------

    @server.prompt(description="A simple prompt without arguments.")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage("This is a simple prompt for testing.")]

    @server.prompt(description="A prompt with two required arguments.")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @server.prompt(description="A prompt embedding the resource it is given.")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 - wire name
        resource = types.TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(types.EmbeddedResource(type="resource", resource=resource)),
            UserMessage("Please process the embedded resource above."),
        ]

    @server.prompt(description="A prompt with an image.")
    def test_prompt_with_image() -> list[UserMessage]:
        return [UserMessage(image_block()), UserMessage("Please analyze the image above.")]

    # --- utilities ---------------------------------------------------------------------------------------------

    async def on_set_level(_ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        # Every level is sent anyway; the scenario only needs the method and the `logging` capability. The levels
        # are recorded for Lifeline's own tests (GET /debug/log-levels).
        LEVELS_SET.append(params.level)
        return types.EmptyResult()

    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)

    @server.completion()
    async def complete(_ref, argument, _context):
        candidates = ["paris", "park", "party", "testValue1", "testValue2"]
        return types.Completion(values=[c for c in candidates if c.startswith(argument.value)], has_more=False)

    return server


def create_app():
    """uvicorn factory: stateful Streamable HTTP at /mcp, Host/Origin check off on purpose (see the module doc)."""
    if os.environ.get("LIFELINE_PEER_MODE", "stateful") != "stateful":
        raise SystemExit("conformance_fixture: only the stateful HTTP mode exists")
    server = build_server()

    @server.custom_route("/debug/log-levels", methods=["GET"])
    async def log_levels(_request: Request) -> Response:
        """Every `logging/setLevel` level received, in order (for the gateway's bridge tests)."""
        return JSONResponse(LEVELS_SET)

    return server.streamable_http_app(
        host="127.0.0.1",
        event_store=MemoryEventStore(),
        retry_interval=500,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--stdio"]:
        raise SystemExit("usage: conformance_fixture.py --stdio (serve HTTP with uvicorn --factory, see the module doc)")
    build_server().run("stdio")
