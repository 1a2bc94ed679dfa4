"""A misbehaving stdio MCP server for the gateway's stdio tests (standard library only).

Writes a line that is not JSON-RPC at start and before every answer (the spec forbids it: a gateway must skip it).
Answers `initialize` (2025-11-25), `ping`, `tools/list` (one tool, `whoami`) and `tools/call whoami`, whose text is
this process's pid (so tests can tell children apart and kill one); `tools/call env` answers what it sees of
`LIFELINE_TEST_VAR`, `FROM_FILE` and any `CARGO_*` variable. `tools/call flood` writes one stdout line of
17 MiB (a gateway must refuse it without buffering it whole). `tools/call spam` writes 50,000 log notifications (~6 MB) before its answer. `tools/call hang` never answers. Any other request
gets -32601. On SIGHUP it writes `fake got SIGHUP` to stderr, on SIGUSR1 `fake got SIGUSR1`.
"""

import json
import os
import signal
import sys


def on_hup(_signum, _frame):
    sys.stderr.write("fake got SIGHUP\n")
    sys.stderr.flush()


def on_usr1(_signum, _frame):
    sys.stderr.write("fake got SIGUSR1\n")
    sys.stderr.flush()


signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGUSR1, on_usr1)


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def noise():
    sys.stdout.write("this line is not JSON-RPC\n")
    sys.stdout.flush()


noise()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if mid is None or method is None:
        continue
    noise()
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "lifeline-stdio-fake", "version": "1"}}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": "whoami", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call" and msg["params"]["name"] == "whoami":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": str(os.getpid())}], "isError": False}})
    elif method == "tools/call" and msg["params"]["name"] == "env":
        seen = {"LIFELINE_TEST_VAR": os.environ.get("LIFELINE_TEST_VAR"),
                "FROM_FILE": os.environ.get("FROM_FILE"),
                "inherited_cargo": any(k.startswith("CARGO_") for k in os.environ)}
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": json.dumps(seen)}], "isError": False}})
    elif method == "tools/call" and msg["params"]["name"] == "flood":
        sys.stdout.write("x" * (17 * 1024 * 1024) + "\n")
        sys.stdout.flush()
    elif method == "tools/call" and msg["params"]["name"] == "spam":
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                           "params": {"level": "info", "data": "spam " + "x" * 64}}) + "\n"
        sys.stdout.write(note * 50000)
        sys.stdout.flush()
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": "spammed"}], "isError": False}})
    elif method == "tools/call" and msg["params"]["name"] == "hang":
        pass
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
