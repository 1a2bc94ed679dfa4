#!/usr/bin/env python3
"""Benchmark (not a test): user-space instructions per request of a proxy, counted by valgrind's callgrind, so
the figure stays the same on a loaded or shared machine (CPU time and latency do not; and a virtual machine often
has no hardware counter for `perf stat -e instructions:u`). The counts are callgrind's `Ir` (instructions read):
every instruction the proxy process executes in user space; the kernel's share (the socket system calls, the
same number per request for every proxy, see docs/gateway.md §Performance) is not in it.

For each path (the paths of bench_gateway.py, plus `stdio`: a 2025-11-25 `tools/list` without a session through `--stdio-mode pool` in
front of a canned stdio server) and each row (nginx `proxy_pass` with `master_process off`, so one process does
all the work; `lifeline gateway` with one worker thread): the proxy starts under callgrind in front of the same
one-worker nginx upstream (bench_gateway.py's), wrk (1 thread, --conns connections) warms it up, the counters
are zeroed (`callgrind_control --zero`), wrk sends --requests requests (its Lua script stops the thread at that
count; --secs bounds the run in time), the counters are dumped, and the instructions per request are the dumped
total over the requests wrk completed. Each run also leaves the dump (`--keep DIR`), so `callgrind_annotate
DIR/ROW-PATH.out` shows where the instructions go.

The dumped total includes the proxy's background work (timers, readiness probes), divided by the requests of
the run: two runs with different request counts are not comparable (few requests overstate the figure). So
every run sends the same number of requests, each line prints its count, and a path whose rows completed counts
more than --tolerance apart (a run cut short by --secs, or errors) gets no ratios and a warning; --strict makes
that an error (exit status 1).

    benches/gateway/instructions.py --lifeline target/release/lifeline [--paths modern,legacy-json]
        [--rows nginx,gateway] [--gateway base=/tmp/lifeline-base] [--requests 5500] [--secs 60] [--pool N]
        [--keep DIR] [--json FILE] [--strict] [--auth]

Loopback only. Needs valgrind, wrk and nginx (scripts/bench-gateway.sh installs the last two).
"""

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_gateway as bg  # noqa: E402

# A stdio MCP server answering from memory: `initialize` and every request with the canned result (its id
# replaced), notifications ignored. Python, so the harness needs nothing else; it runs natively (callgrind
# follows only the gateway).
CANNED_STDIO = r"""
import json, sys
RESULT = json.loads(sys.argv[1])["result"]
INIT = {"capabilities": {"tools": {}}, "serverInfo": {"name": "canned", "version": "1"}}
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if "id" not in msg or "method" not in msg:
        continue
    result = RESULT
    if msg["method"] == "initialize":
        result = dict(INIT, protocolVersion=msg.get("params", {}).get("protocolVersion", "2025-11-25"))
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
    sys.stdout.flush()
"""


# The stdio path: a 2025-11-25 `tools/list` in a session the harness opens first (`open_session`).
bg.PATHS["stdio"] = ({"MCP-Protocol-Version": "2025-11-25"}, bg.LEGACY_BODY)


def open_session(port):
    """`initialize` through the gateway; its `Mcp-Session-Id`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n\r\n{body}").encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    for line in data.decode(errors="replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "mcp-session-id":
            return value.strip()
    raise SystemExit(f"initialize through port {port} gave no session:\n{data[:600]!r}")


def callgrind(cmd, out):
    return [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--separate-threads=no",
    ] + cmd


def counted_script(script, requests):
    """`script` (bench_gateway.py's wrk script) plus a `response` hook that stops wrk's thread once it has seen
    `requests` responses; the requests still in flight on the other connections complete, so wrk counts a few
    more (at most --conns)."""
    out = script[: -len(".lua")] + f"-n{requests}.lua"
    with open(script) as f, open(out, "w") as o:
        o.write(f.read())
        o.write(f"local seen = 0\nfunction response()\n  seen = seen + 1\n"
                f"  if seen == {requests} then wrk.thread:stop() end\nend\n")
    return out


def spread(rows):
    """The largest request count of `rows` over the smallest (1.0 when they match)."""
    counts = [max(r["requests"], 1) for r in rows.values()]
    return max(counts) / min(counts) if counts else 1.0


def total_ir(prefix):
    """The sum of the `totals:`/`summary:` Ir of every dump written for `prefix` after the zeroing."""
    best = 0
    for f in glob.glob(prefix + "*"):
        with open(f) as fh:
            for line in fh:
                if line.startswith("totals:") or line.startswith("summary:"):
                    best = max(best, int(line.split()[1]))
    return best


def measured(pid, out, load):
    """Zeroes the callgrind counters of process `pid` (run with `--callgrind-out-file=out`), calls `load()` (the
    measured traffic), dumps the counters and returns `(instructions, load's result)`. Waits up to 30 s for the
    dump file."""
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)
    result = load()
    for f in glob.glob(out + "*"):
        os.remove(f)
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while not glob.glob(out + "*") and time.monotonic() < deadline:
        time.sleep(0.1)
    return total_ir(out), result


def run_row(row, binary, path, up_ports, tmp, args, auth=None):
    up_port = up_ports[0]
    port = bg.free_port()
    d = os.path.join(tmp, f"{row}-{path}")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "callgrind.out")
    env = dict(os.environ)
    if row == "nginx":
        http = (
            "  upstream mcp { " + "".join(f"server 127.0.0.1:{p}; " for p in up_ports) + "keepalive 64; }\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://mcp;\n"
            "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
            "      proxy_set_header Host $http_host;\n      proxy_buffering off;\n    }\n  }\n"
        )
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(bg.nginx_conf(d, {"workers": 1, "http": http}).replace("master_process on", "master_process off"))
        cmd = ["nginx", "-c", conf, "-p", d]
    else:
        env.update({"LIFELINE_LOG": "warn", "LIFELINE_WORKER_THREADS": "1", "TOKIO_WORKER_THREADS": "1"})
        cmd = [binary, "gateway", "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{bg.free_port()}",
               "--max-sessions", "100000"]
        if path == "stdio":
            server = os.path.join(tmp, "canned_stdio.py")
            cmd += ["--stdio-mode", "pool", "--pool-size", "1", "--", sys.executable, server, bg.RESULT]
        else:
            for p in up_ports:
                cmd += ["--upstream", f"http://127.0.0.1:{p}/mcp"]
        if auth and row in auth["rows"]:
            cmd += ["--config", auth["rows"][row][0]]
    proc = bg.Proc(row, bg.pinned(callgrind(cmd, out), args.proxy_cpus), env=env)
    try:
        bg.wait_port(port, timeout=120)
        wrk_path = path
        extra = {"Authorization": f"Bearer {auth['rows'][row][1]}"} if auth and row in auth["rows"] else None
        if path == "stdio":
            deadline = time.monotonic() + 120  # the pool's child starts after the listener
            while extra is None:
                try:
                    extra = {"Mcp-Session-Id": open_session(port)}
                except SystemExit:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        script = bg.wrk_script(d, wrk_path, extra, tag=f"-{row}")
        counted = counted_script(script, args.requests)
        if path != "stdio":  # the stdio pool answers with SSE; the session's opening proved it serves
            bg.check_reply(port, wrk_path, extra)
        bg.run_wrk(port, script, 2, args.conns, args.other_cpus)
        ir, r = measured(proc.p.pid, out, lambda: bg.run_wrk(port, counted, args.secs, args.conns, args.other_cpus))
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for f in glob.glob(out + "*"):
                shutil.copy(f, os.path.join(args.keep, f"{row}-{path}.out"))
    except SystemExit:
        print(proc.output(), file=sys.stderr)
        raise
    finally:
        proc.stop()
    reqs = max(r["requests"], 1)
    return {"requests": r["requests"], "errors": r["errors"], "instructions": ir, "instructions_per_req": ir / reqs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeline", default="target/release/lifeline")
    ap.add_argument("--gateway", action="append", default=[], metavar="NAME=BIN")
    ap.add_argument("--paths", default="modern,legacy-json,legacy-sse,stdio")
    ap.add_argument("--rows", default="nginx,gateway", help="nginx and/or gateway (default both)")
    ap.add_argument("--requests", type=int, default=5500, help="requests per measured run (default 5500)")
    ap.add_argument("--secs", type=int, default=60, help="bound on a measured run's time (default 60)")
    ap.add_argument("--tolerance", type=float, default=0.10,
                    help="largest relative spread of the request counts of one path's rows (default 0.10)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the request counts are further apart")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--pool", type=int, default=1, help="upstreams behind each proxy (bench_gateway.py's --pool)")
    ap.add_argument("--keep", metavar="DIR", help="keep every callgrind dump as DIR/ROW-PATH.out")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--auth", action="store_true",
                    help="add bench_gateway.py's auth rows (gateway-jwt, gateway-apikey, gateway-introspect: the "
                         "--lifeline binary with an `auth:` block, each request carrying its credential)")
    args = ap.parse_args()
    unknown = [r for r in args.rows.split(",") if r not in ("nginx", "gateway")]
    if unknown:
        raise SystemExit(f"--rows: unknown row(s) {', '.join(unknown)}: the rows are nginx and gateway; add other "
                         "gateway builds with --gateway NAME=BIN and the auth rows with --auth")
    for tool in ("valgrind", "callgrind_control", "wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing")
    ncpu = len(os.sched_getaffinity(0))
    args.proxy_cpus, args.other_cpus = ("0", f"1-{ncpu - 1}") if ncpu >= 2 else (None, None)
    rows = [(r, args.lifeline) for r in args.rows.split(",")]
    rows += [(f"gateway-{n}", b) for n, _, b in (g.partition("=") for g in args.gateway)]
    tmp = tempfile.mkdtemp(prefix="lifeline-instr-")
    with open(os.path.join(tmp, "canned_stdio.py"), "w") as f:
        f.write(CANNED_STDIO)
    up_ports = [bg.free_port() for _ in range(max(args.pool, 1))]
    auth = None
    if args.auth:
        auth = bg.auth_setup(os.path.join(tmp, "auth"), up_ports[0], "http://127.0.0.1/mcp")
        rows += [(row, args.lifeline) for row in auth["rows"]]
    # The first upstream also serves the auth rows' JWKS and introspection answer.
    upstreams = [bg.start_upstream(os.path.join(tmp, f"upstream-{i}"), p, args.other_cpus, auth if i == 0 else None)
                 for i, p in enumerate(up_ports)]
    results = {}
    uneven = []
    try:
        for p in up_ports:
            bg.wait_port(p)
        for path in args.paths.split(","):
            results[path] = {}
            for row, binary in rows:
                if path == "stdio" and (row == "nginx" or (auth and row in auth["rows"])):
                    continue
                r = run_row(row, binary, path, up_ports, tmp, args, auth)
                results[path][row] = r
                print(f"{path:<12} {row:<16} {r['instructions_per_req']:>10.0f} instructions/request "
                      f"({r['requests']} requests, {r['errors']} errors)", flush=True)
            if spread(results[path]) > 1 + args.tolerance:
                counts = ", ".join(f"{row} {r['requests']}" for row, r in results[path].items())
                print(f"  WARNING: {path}: request counts differ by more than {args.tolerance:.0%} ({counts}); "
                      "the per-request figures include background work over unequal runs and are NOT "
                      "comparable: no ratios printed (raise --secs, or check the errors)", file=sys.stderr,
                      flush=True)
                uneven.append(path)
                continue
            rows_here = results[path]
            base = rows_here.get("nginx")
            for row, r in rows_here.items():
                if base and row != "nginx":
                    print(f"  {row} / nginx: {r['instructions_per_req'] / base['instructions_per_req']:.2f}x")
            gw = rows_here.get("gateway")
            for row, r in rows_here.items():
                if gw and auth and row in auth["rows"]:
                    print(f"  {row} - gateway: {r['instructions_per_req'] - gw['instructions_per_req']:+.0f} "
                          "instructions per request (what auth adds)")
                elif gw and row.startswith("gateway-"):
                    print(f"  gateway / {row}: {gw['instructions_per_req'] / r['instructions_per_req']:.2f}x")
    finally:
        for u in upstreams:
            u.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if uneven and args.strict:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
