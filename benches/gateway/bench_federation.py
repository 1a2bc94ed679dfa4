#!/usr/bin/env python3
"""Benchmark (not a test): what the federation adds per request (issue 16 §Benchmark).

Three fast upstreams that are not contenders (one nginx worker with the echo module listening on three ports,
answering every JSON-RPC request with the id it was sent: `initialize`, `tools/list` with two tools, `tools/call`;
`GET` is 405, so no notification stream), federated by `lifeline gateway` (`servers:` a, b, c, era legacy, prefix
always). A modern (2026-07-28, stateless) client, wrk, sends:

- fed-list: `tools/list` on the merged endpoint (the gateway asks all three servers and merges six tools), against
  direct-list: the same `tools/list` to one upstream;
- fed-call: `tools/call a__echo`, bridged (modern client, legacy upstream, on the endpoint's implicit session),
  against direct-call: the same call to the upstream.

A warm-up run opens the connections and the implicit session first (the goal excludes the first session setup).
Columns: req/s, p50, p99 (wrk), CPU µs per request of the gateway process (utime + stime from /proc over the run,
divided by the requests), and the added p50/p99 (gateway row minus its direct row). The goal printed with the
figures: bridging adds under 0.2 ms at p50 on loopback. One run; rounds are interleaved as in bench_gateway.py,
whose helpers (processes, pinning, wrk, /proc CPU) this script imports rather than copies.

Loopback only. Run through `scripts/bench-federation.sh` (installs wrk and nginx, takes a release binary).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_gateway as bg  # noqa: E402

TOOLS = (
    '{"tools":[{"name":"echo","description":"Echoes the message back.","inputSchema":{"type":"object",'
    '"properties":{"message":{"type":"string"}},"required":["message"]}},{"name":"add","description":'
    '"Adds two numbers.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":'
    '"number"}},"required":["a","b"]}}]}'
)
INIT = (
    '{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},'
    '"serverInfo":{"name":"bench-upstream","version":"1.0.0"}}'
)
CALL = '{"content":[{"type":"text","text":"hi"}],"isError":false}'

# The 2026-07-28 envelope a modern request must carry (the gateway refuses one without the client capabilities).
META = ('"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
        '"io.modelcontextprotocol/clientCapabilities":{}}')
MODERN = {"MCP-Protocol-Version": "2026-07-28"}
LEGACY = {"MCP-Protocol-Version": "2025-11-25"}
# name -> (headers, body), registered in bench_gateway.PATHS so its wrk_script writes the Lua.
PATHS = {
    "fed-list": (
        {**MODERN, "Mcp-Method": "tools/list"},
        '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{' + META + "}}",
    ),
    "fed-call": (
        {**MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "a__echo"},
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__echo",'
        '"arguments":{"message":"hi"},' + META + "}}",
    ),
    "direct-list": (LEGACY, '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'),
    "direct-call": (
        LEGACY,
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}',
    ),
}
# (gateway row, its direct row, what the gateway's answer must hold)
ROWS = [("fed-list", "direct-list", "c__add"), ("fed-call", "direct-call", '"hi"')]
GOAL_US = 200


def start_upstreams(d, ports, cpus):
    """One nginx worker on `ports`, echoing each request's JSON-RPC id in a canned result per method."""
    servers = "".join(
        f"  server {{\n    listen 127.0.0.1:{p};\n    location = /mcp {{\n"
        "      if ($request_method = GET) { return 405; }\n"
        "      echo_read_request_body;\n      default_type application/json;\n"
        "      echo '{\"jsonrpc\":\"2.0\",\"id\":$rpc_id,\"result\":$rpc_result}';\n    }\n  }\n"
        for p in ports
    )
    http = (
        "  client_body_buffer_size 64k;\n"
        '  map $request_body $rpc_id { "~\\"id\\":(?<rid>[0-9]+)" $rid; default 0; }\n'
        '  map $request_body $rpc_method { "~\\"method\\":\\"(?<m>[a-z/_]+)\\"" $m; default ""; }\n'
        f"  map $rpc_method $rpc_result {{ initialize '{INIT}'; tools/list '{TOOLS}'; tools/call '{CALL}';"
        " default '{}'; }\n" + servers
    )
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("load_module /usr/share/nginx/modules/ngx_http_echo_module.so;\n" + bg.nginx_conf(d, {"workers": 1, "http": http}))
    return bg.Proc("upstreams", bg.pinned(["nginx", "-c", conf, "-p", d], cpus))


def post(port, name):
    headers, body = PATHS[name]
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read().decode(errors="replace")


def wait_servers_ready(admin, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/servers", timeout=2) as r:
                last = r.read().decode()
            servers = json.loads(last)["servers"]
            if servers and all(s["state"] == "ready" for s in servers):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"the federated servers are not all ready after {timeout}s: {last}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeline", required=True, help="the lifeline binary (a release build)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--conns", type=int, default=1, help="wrk connections (1: the latency one request adds, no queueing)")
    ap.add_argument("--workers", type=int, default=1, help="the gateway's --worker-threads")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args()
    bg.PATHS.update(PATHS)
    ncpu = len(os.sched_getaffinity(0))
    proxy_cpus, other_cpus = ("0", ",".join(str(c) for c in range(1, ncpu))) if ncpu >= 2 else (None, None)
    d = tempfile.mkdtemp(prefix="bench-federation-")
    procs = []
    try:
        ports = [bg.free_port() for _ in range(3)]
        procs.append(start_upstreams(os.path.join(d, "up"), ports, other_cpus))
        for p in ports:
            bg.wait_port(p)
        config = os.path.join(d, "gateway.yaml")
        with open(config, "w") as f:
            f.write(
                "servers:\n"
                + "".join(
                    f"- {{name: {n}, url: 'http://127.0.0.1:{p}/mcp', era: legacy}}\n" for n, p in zip("abc", ports)
                )
            )
        gw_port, admin = bg.free_port(), bg.free_port()
        # bench_gateway.start_gateway picks its own admin port; the federation's /servers needs one we know.
        gw = bg.Proc(
            "gateway",
            bg.pinned(
                [args.lifeline, "gateway", "--config", config, "--listen", f"127.0.0.1:{gw_port}",
                 "--admin-listen", f"127.0.0.1:{admin}"],
                proxy_cpus,
            ),
            env={**os.environ, "LIFELINE_LOG": "warn", "LIFELINE_WORKER_THREADS": str(args.workers)},
        )
        procs.append(gw)
        bg.wait_port(gw_port)
        wait_servers_ready(admin)
        for fed, direct, needle in ROWS:
            for port, name, want in ((gw_port, fed, needle), (ports[0], direct, '"result"')):
                status, text = post(port, name)
                if status != 200 or want not in text:
                    raise SystemExit(f"{name} on port {port} answered unexpectedly ({status}): {text[:400]}")
        scripts = {name: bg.wrk_script(d, name) for name in PATHS}
        results = {name: [] for name in PATHS}
        for _ in range(args.rounds):
            for fed, direct, _needle in ROWS:
                results[fed].append(bg.measure(gw, gw_port, fed, scripts[fed], args, other_cpus))
                results[direct].append(bg.measure(None, ports[0], direct, scripts[direct], args, other_cpus))
    finally:
        for p in reversed(procs):
            p.stop()

    med = {name: {k: bg.median(rows, k) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req")}
           for name, rows in results.items()}
    print(f"federation: 3 servers, gateway --worker-threads {args.workers}, wrk -c{args.conns}, "
          f"{args.rounds} rounds × {args.secs}s, median of rounds; CPUs {ncpu}")
    print(f"{'row':<12} {'req/s':>9} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/req':>11} {'added p50':>10} {'added p99':>10}")
    for fed, direct, _needle in ROWS:
        for name in (direct, fed):
            m = med[name]
            added50 = added99 = "-"
            if name == fed:
                added50 = f"{m['p50_us'] - med[direct]['p50_us']:.0f} µs"
                added99 = f"{m['p99_us'] - med[direct]['p99_us']:.0f} µs"
            cpu = "-" if m["cpu_us_per_req"] is None else f"{m['cpu_us_per_req']:.1f}"
            print(f"{name:<12} {m['rps']:>9.0f} {m['p50_us']:>8.0f} {m['p99_us']:>8.0f} {cpu:>11} "
                  f"{added50:>10} {added99:>10}")
    bridged = med["fed-call"]["p50_us"] - med["direct-call"]["p50_us"]
    verdict = "met" if bridged < GOAL_US else "NOT met"
    print(f"goal: bridging adds under {GOAL_US} µs at p50 on loopback (first session setup excluded): "
          f"{bridged:.0f} µs, {verdict}")
    errors = sum(r["errors"] for rows in results.values() for r in rows)
    if errors:
        print(f"warning: wrk counted {errors} errors", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": results, "median": med, "added_p50_bridged_us": bridged}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
