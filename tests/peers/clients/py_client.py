"""A real MCP client (official Python SDK 2.x, `.peers/py2`) for Lifeline's gateway tests.

Connects to URL, lists tools, optionally calls one, and prints one JSON object per line on stdout:

  {"event": "connected", "protocol_version": "..."}
  {"event": "tools", "names": [...]}
  {"event": "progress", "t": <s since the call started>, "progress": p, "total": t}
  {"event": "result", "t": <s since the call started>, "is_error": false, "text": "..."}
  {"event": "error", "type": "...", "message": "..."}     (then exit status 1)

Usage:
  python py_client.py URL [--transport http|sse] [--mode legacy|auto|2026-07-28]
                          [--call NAME --args JSON] [--repeat N] [--timeout S]

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the SDK's client spans go to that OTLP/HTTP receiver (`../otel_setup.py`),
and each request carries its context in `params._meta`.

`--transport sse` uses the deprecated 2024-11-05 HTTP+SSE client (URL is the /sse endpoint). Every run is bounded
by `--timeout` (default 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import otel_setup  # noqa: E402 (after the path set-up)
from mcp.client.client import Client
from mcp.client.sse import sse_client


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> None:
    server = sse_client(args.url) if args.transport == "sse" else args.url
    mode = "legacy" if args.transport == "sse" else args.mode
    async with Client(server, mode=mode, cache=None) as client:
        emit({"event": "connected", "protocol_version": client.protocol_version})
        listed = await client.list_tools()
        emit({"event": "tools", "names": [t.name for t in listed.tools]})
        if not args.call:
            return
        arguments = json.loads(args.args) if args.args else {}
        for _ in range(args.repeat):
            start = time.monotonic()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                emit({"event": "progress", "t": time.monotonic() - start, "progress": progress, "total": total})

            result = await client.call_tool(args.call, arguments, progress_callback=on_progress)
            texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
            emit({"event": "result", "t": time.monotonic() - start, "is_error": bool(result.is_error),
                  "text": "\n".join(texts)})


def main() -> int:
    otel_setup.configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--transport", choices=["http", "sse"], default="http")
    parser.add_argument("--mode", default="legacy")
    parser.add_argument("--call")
    parser.add_argument("--args")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except BaseException as exc:  # noqa: BLE001 - report every failure as one JSON line
        inner = exc
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        emit({"event": "error", "type": type(inner).__name__, "message": str(inner)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
