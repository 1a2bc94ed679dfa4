"""Load generator for scripts/zero-downtime.sh: keeps modern (2026-07-28, stateless) requests and legacy
(2025-11-25, session) tool calls going through a load balancer while the gateways behind it are rolled.

  python loadgen.py URL --duration S --sigterm-log FILE [--modern N] [--legacy N]

- modern workers: back-to-back stateless `tools/call echo` POSTs with `MCP-Protocol-Version: 2026-07-28`,
  `Mcp-Method`, `Mcp-Name` and `_meta`; any answer other than a JSON-RPC result is a failure.
- legacy workers: a session (`initialize`, `notifications/initialized`), then back-to-back long calls of
  `slow_progress` (≈2 s, progress streamed over SSE). A 404 on a request carrying the session id means the
  instance ended the session while draining (2025-11-25 transports §Session Management 4): the worker
  re-initializes and counts a migration, not a failure. Anything else that is not the call's result fails.

The script appends one `time.time()` per SIGTERM it sends to the file given by --sigterm-log; at the end the
load generator counts the legacy calls that were in flight at one of those instants. It prints a JSON summary on
the last line and exits 0 when no modern request failed and no legacy call in flight at a SIGTERM failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx2

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "loadgen", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Stats:
    def __init__(self) -> None:
        self.modern = {"sent": 0, "completed": 0, "failed": 0}
        self.legacy = {"sent": 0, "completed": 0, "failed": 0, "migrated": 0, "sessions": 0}
        self.legacy_calls: list[tuple[float, float, bool]] = []  # (start, end, ok)
        self.errors: list[str] = []

    def error(self, what: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(what)


async def read_result(resp: httpx2.Response, want_id: int) -> dict | None:
    """The JSON-RPC response with id `want_id` from a JSON or SSE reply."""
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
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
            if isinstance(msg, dict) and msg.get("id") == want_id and ("result" in msg or "error" in msg):
                return msg
    return None


async def modern_worker(client: httpx2.AsyncClient, url: str, stop: float, stats: Stats, n: int) -> None:
    rid = n * 1_000_000
    while time.time() < stop:
        rid += 1
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": f"m{rid}"}, "_meta": META}}
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
        stats.modern["sent"] += 1
        try:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                msg = await read_result(resp, rid) if resp.status_code == 200 else None
                if msg is not None and "result" in msg:
                    stats.modern["completed"] += 1
                else:
                    stats.modern["failed"] += 1
                    stats.error(f"modern {resp.status_code} {msg}")
        except Exception as exc:  # noqa: BLE001 - every failure counts
            stats.modern["failed"] += 1
            stats.error(f"modern {type(exc).__name__}: {exc}")


async def open_session(client: httpx2.AsyncClient, url: str) -> str | None:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "loadgen", "version": "1"}}}
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


async def legacy_worker(client: httpx2.AsyncClient, url: str, stop: float, stats: Stats, n: int) -> None:
    rid = n * 1_000_000
    sid: str | None = None
    while time.time() < stop:
        if sid is None:
            try:
                sid = await open_session(client, url)
            except Exception as exc:  # noqa: BLE001
                stats.error(f"legacy init {type(exc).__name__}: {exc}")
                sid = None
            if sid is None:
                await asyncio.sleep(0.2)
                continue
            stats.legacy["sessions"] += 1
        rid += 1
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": "slow_progress", "arguments": {"steps": 4, "delay_ms": 500},
                           "_meta": {"progressToken": f"p{rid}"}}}
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": sid, "MCP-Protocol-Version": LEGACY}
        stats.legacy["sent"] += 1
        start = time.time()
        ok = False
        try:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code == 404:
                    # The draining instance ended the session: re-initialize elsewhere (not a failure).
                    stats.legacy["sent"] -= 1
                    stats.legacy["migrated"] += 1
                    sid = None
                    continue
                msg = await read_result(resp, rid) if resp.status_code == 200 else None
                ok = msg is not None and "result" in msg
                if not ok:
                    stats.error(f"legacy {resp.status_code} {msg}")
        except Exception as exc:  # noqa: BLE001
            stats.error(f"legacy {type(exc).__name__}: {exc}")
        stats.legacy_calls.append((start, time.time(), ok))
        stats.legacy["completed" if ok else "failed"] += 1
        if not ok:
            sid = None


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--sigterm-log", required=True)
    p.add_argument("--modern", type=int, default=4)
    p.add_argument("--legacy", type=int, default=4)
    args = p.parse_args()
    stats = Stats()
    stop = time.time() + args.duration
    limits = httpx2.Limits(max_connections=args.modern + args.legacy + 4)
    timeout = httpx2.Timeout(30.0)
    async with httpx2.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [modern_worker(client, args.url, stop, stats, i + 1) for i in range(args.modern)]
        tasks += [legacy_worker(client, args.url, stop, stats, 100 + i) for i in range(args.legacy)]
        await asyncio.gather(*tasks)
    try:
        with open(args.sigterm_log) as f:
            sigterms = [float(line) for line in f if line.strip()]
    except OSError:
        sigterms = []
    at_sigterm = [c for c in stats.legacy_calls if any(c[0] <= t <= c[1] for t in sigterms)]
    failed_at_sigterm = sum(1 for c in at_sigterm if not c[2])
    summary = {
        "modern": stats.modern,
        "legacy": stats.legacy,
        "legacy_in_flight_at_sigterm": len(at_sigterm),
        "legacy_in_flight_at_sigterm_failed": failed_at_sigterm,
        "sigterms": len(sigterms),
        "errors": stats.errors,
    }
    m, lg = stats.modern, stats.legacy
    print(f"modern: sent {m['sent']} completed {m['completed']} failed {m['failed']}")
    print(f"legacy: sent {lg['sent']} completed {lg['completed']} failed {lg['failed']} "
          f"(sessions {lg['sessions']}, migrated after drain {lg['migrated']}); "
          f"in flight at SIGTERM {len(at_sigterm)}, of which failed {failed_at_sigterm}")
    print(json.dumps(summary))
    ok = m["failed"] == 0 and failed_at_sigterm == 0 and m["completed"] > 0 and lg["completed"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
