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
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import ACCEPT, LEGACY, open_session, read_result  # noqa: E402 (the zero-downtime load generator)


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
