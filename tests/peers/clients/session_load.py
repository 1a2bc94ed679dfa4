"""Session-loss counter for scripts/sessions-survive.sh: N legacy (2025-11-25) sessions, each opened once, each
calling `add` back to back through URL until --duration ends or the file --stop exists.

- A **session loss** is an answer that tells the client its session is gone (HTTP 404 on a request carrying the
  session id: 2025-11-25 transports §Session Management 4): the client would have to re-initialize. The worker
  counts it, re-initializes, and goes on.
- A **failed call** is any other answer that is not the call's result (a JSON-RPC error with the call's id, a
  stream cut mid-answer): a call in flight when a replica died. The session goes on.

Prints one JSON line: {"sessions", "session_losses", "calls", "failed_calls", "errors"}.

  python session_load.py URL --sessions N --duration S [--stop FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import httpx2

LEGACY = "2025-11-25"
ACCEPT = "application/json, text/event-stream"


async def read_result(resp: httpx2.Response, want_id: int) -> dict | None:
    """The JSON-RPC response with id `want_id` from a JSON or SSE reply."""
    if resp.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(await resp.aread())
        return body if body.get("id") == want_id else None
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line == "" and data:
            try:
                msg = json.loads("\n".join(data))
            except ValueError:
                msg = None
            data = []
            if isinstance(msg, dict) and msg.get("id") == want_id:
                return msg
    return None


async def open_session(client: httpx2.AsyncClient, url: str) -> str | None:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {},
                       "clientInfo": {"name": "session-load", "version": "1"}}}
    async with client.stream("POST", url, json=init, headers={"Accept": ACCEPT}) as resp:
        if resp.status_code != 200:
            return None
        sid = resp.headers.get("mcp-session-id")
        await read_result(resp, 0)
    if not sid:
        return None
    r = await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                          headers={"Accept": ACCEPT, "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY})
    return sid if r.status_code == 202 else None


async def worker(client, url: str, stop_at: float, stop_file: str | None, stats: dict, n: int) -> None:
    sid = None
    rid = n * 1_000_000
    while time.time() < stop_at and not (stop_file and os.path.exists(stop_file)):
        if sid is None:
            try:
                sid = await open_session(client, url)
            except Exception as exc:  # noqa: BLE001
                stats["errors"].append(f"init {type(exc).__name__}")
            if sid is None:
                await asyncio.sleep(0.2)
                continue
            stats["sessions"] += 1
        rid += 1
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": rid, "b": 1}}}
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY}
        stats["calls"] += 1
        try:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code == 404:
                    stats["session_losses"] += 1
                    sid = None
                    continue
                msg = await read_result(resp, rid) if resp.status_code == 200 else None
                if msg is None or "result" not in msg:
                    stats["failed_calls"] += 1
                    if len(stats["errors"]) < 10:
                        stats["errors"].append(f"{resp.status_code} {msg}")
        except Exception as exc:  # noqa: BLE001
            stats["failed_calls"] += 1
            if len(stats["errors"]) < 10:
                stats["errors"].append(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.05)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--stop")
    args = p.parse_args()
    stats = {"sessions": 0, "session_losses": 0, "calls": 0, "failed_calls": 0, "errors": []}
    stop_at = time.time() + args.duration
    limits = httpx2.Limits(max_connections=args.sessions + 4)
    async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(30.0)) as client:
        await asyncio.gather(*(worker(client, args.url, stop_at, args.stop, stats, i + 1)
                               for i in range(args.sessions)))
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
