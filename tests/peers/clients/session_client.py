"""A long-lived MCP client session (official Python SDK 2.x, `.peers/py2`) for the gateway's recovery tests.

Connects to URL (legacy Streamable HTTP), calls `add` once, then calls it again for every line `call` read on
stdin, until `quit` or end of input. Prints one JSON object per line on stdout:

  {"event": "connected", "session_id": "..."}
  {"event": "result", "n": <call number>, "text": "...", "session_id": "..."}
  {"event": "error", "n": <call number>, "type": "...", "message": "..."}   (the session goes on)

The session id printed is the one the SDK's transport sends (it adopts an id only from the `initialize`
answer). The whole run is bounded by `--timeout` (default 120 s).

Usage: python session_client.py URL [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mcp.client.client import Client


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def session_id(client: Client) -> str | None:
    # Private SDK detail (mcp 2.3.0): the transport keeps the id; best effort, for the test's report only.
    for attr in ("session_id", "_session_id"):
        value = getattr(client, attr, None)
        if isinstance(value, str):
            return value
    return None


async def run(url: str) -> None:
    loop = asyncio.get_running_loop()
    async with Client(url, mode="legacy", cache=None) as client:
        emit({"event": "connected", "session_id": session_id(client)})
        n = 0
        while True:
            n += 1
            try:
                result = await client.call_tool("add", {"a": n, "b": 1})
                texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
                emit({"event": "result", "n": n, "text": "".join(texts), "is_error": bool(result.is_error)})
            except Exception as exc:  # noqa: BLE001 (reported, and the session goes on)
                emit({"event": "error", "n": n, "type": type(exc).__name__, "message": str(exc)})
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if line.strip() != "call":
                return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args.url), args.timeout))
    except Exception as exc:  # noqa: BLE001
        emit({"event": "error", "n": 0, "type": type(exc).__name__, "message": str(exc)})
        sys.exit(1)


if __name__ == "__main__":
    main()
