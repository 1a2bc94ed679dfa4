#!/usr/bin/env python3
"""Benchmark (not a test): what a proxy costs per request in front of a fast upstream that is not a contender.

Rows: direct (no proxy), nginx `proxy_pass`, HAProxy and `lifeline gateway` (plus any extra gateway binary given
with --gateway, e.g. an older build), on three request paths:

- modern: a stateless 2026-07-28 `tools/list` POST with `Mcp-Method` and `MCP-Protocol-Version`;
- legacy-json: a 2025-11-25 POST in a session (`Mcp-Session-Id`) answered with application/json;
- legacy-sse: the same answered with a one-event text/event-stream (the gateway's SSE relay).

The upstream is a separate nginx (one worker) returning a canned JSON-RPC result, so only the proxies differ. Every
contender gets the same worker count (--workers: nginx `worker_processes`, HAProxy `nbthread`, the gateway's
`--worker-threads`). The load generator is wrk (1 thread, --conns connections, a Lua script per path) in its own
process. With two or more CPUs the proxies are pinned to CPU 0 and wrk plus the upstream to the others (`taskset`).

With --auth, three more rows run the same gateway with an `auth:` block (docs/gateway-auth.md): gateway-jwt (an
RS256 JWT, its JWKS cached), gateway-apikey, gateway-introspect (an opaque token, the RFC 7662 answer cached); the
upstream serves the JWKS and the introspection answer, and the summary prints what auth adds to the gateway's p50
and CPU per request (issue 12's goal: JWT validation adds at most 30 µs at p50).

Columns: req/s, p50, p99, p99.9 (wrk's latency histogram), CPU µs per request (utime + stime of every process of
the contender from /proc, over the measured run, divided by the requests wrk completed), RSS (VmRSS summed over
the contender's processes after the run) and anon (RssAnon: the same without the executable's resident pages,
which move with code layout; the process's own memory). Rounds are interleaved (round 1 runs every row, then round 2, ...) so
every row sees the same machine load; the table prints the median and the range, and ratios to nginx: the ratio
of the medians, and below it the same ratios paired by round (each round's run against nginx's run of that round,
median [min–max] over the rounds), which a machine whose speed drifts between rounds disturbs less.

`--pool N` puts N upstreams (each its own one-worker nginx) behind every proxy: nginx `upstream` round-robin,
HAProxy `balance roundrobin`, and the gateway's pool (`--upstream` repeated: power of two choices over outstanding
requests); the direct row hits the first upstream. Issue 15's comparison is `--pool 3`.

`--json FILE` writes every figure; `benches/gateway/compare.py OLD.json NEW.json` prints the ratios between two
such files (the regression guard: it asserts nothing, it shows).

Loopback only. Run through `scripts/bench-gateway.sh`, which installs wrk, nginx and HAProxy and builds --release.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RESULT = (
    '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","description":"Echoes the message back.",'
    '"inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}},'
    '{"name":"add","description":"Adds two numbers.","inputSchema":{"type":"object","properties":'
    '{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}}]}}'
)

MODERN_BODY = (
    '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":'
    '{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"}}}}'
)
LEGACY_BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'

# path name -> (request headers, body). The upstream answers a session id starting with "sse-" with SSE.
PATHS = {
    "modern": (
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
        MODERN_BODY,
    ),
    "legacy-json": (
        {"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "json-6f1c2a9e4b7d4e0f9a3c5b8d2e1f7a60"},
        LEGACY_BODY,
    ),
    "legacy-sse": (
        {"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "sse-6f1c2a9e4b7d4e0f9a3c5b8d2e1f7a60"},
        LEGACY_BODY,
    ),
}

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def pinned(cmd, cpus):
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus] + cmd
    return cmd


class Proc:
    """A started process (its own process group), killed by PGID on stop."""

    def __init__(self, name, cmd, env=None, cwd=None):
        self.name = name
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def pids(self):
        """The process and its descendants (nginx's workers)."""
        out = {self.p.pid}
        changed = True
        while changed:
            changed = False
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in out:
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in out:
                    out.add(int(entry))
                    changed = True
        return out

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=10)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kib(pids, field="VmRSS:"):
    """`field` of /proc/PID/status summed over `pids`, in KiB. VmRSS counts the executable's resident pages too
    (clean, shared with the page cache, and moving with the code's layout: two builds a few lines apart differed by
    1.7 MiB of them and not one byte of heap); RssAnon is the process's own memory (heap, stacks)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def nginx_conf(d, body):
    return (
        f"worker_processes {body['workers']};\ndaemon off;\nmaster_process on;\nuser root;\npid {d}/nginx.pid;\n"
        f"error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n"
        f"  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n"
        f"  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{body['http']}}}\n"
    )


def start_upstream(d, port, cpus, auth=None):
    """nginx returning the canned result: JSON, or SSE for a session id starting with `sse-`; with `auth` (see
    `auth_setup`) also the JWKS at /jwks and an active RFC 7662 answer at /introspect, fetched by the gateway's
    auth rows once (their caches then hold them)."""
    auth_locations = ""
    if auth:
        auth_locations = (
            f"    location = /jwks {{\n      default_type application/json;\n      return 200 '{auth['jwks']}';\n    }}\n"
            f"    location = /introspect {{\n      default_type application/json;\n"
            f"      return 200 '{auth['introspection']}';\n    }}\n"
        )
    http = (
        "  map $http_mcp_session_id $reply_sse { ~^sse- 1; default 0; }\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n{auth_locations}"
        "    location / {\n      if ($reply_sse) { rewrite ^ /sse-reply last; }\n"
        f"      default_type application/json;\n      return 200 '{RESULT}';\n    }}\n"
        "    location = /sse-reply {\n      internal;\n      default_type text/event-stream;\n"
        f"      return 200 'event: message\\ndata: {RESULT}\\n\\n';\n    }}\n  }}\n"
    )
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, {"workers": 1, "http": http}))
    return Proc("upstream", pinned(["nginx", "-c", conf, "-p", d], cpus))


def start_nginx(d, port, ups, workers, cpus):
    servers = " ".join(f"server 127.0.0.1:{up};" for up in ups)
    http = (
        f"  upstream mcp {{ {servers} keepalive 64; }}\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://mcp;\n"
        "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
        "      proxy_set_header Host $http_host;\n      proxy_buffering off;\n    }\n  }\n"
    )
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, {"workers": workers, "http": http}))
    return Proc("nginx", pinned(["nginx", "-c", conf, "-p", d], cpus))


def start_haproxy(d, port, ups, workers, cpus):
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(
            f"global\n  nbthread {workers}\n  maxconn 4096\n"
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
            f"frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
            "backend be\n  balance roundrobin\n  http-reuse always\n"
            + "".join(f"  server up{i} 127.0.0.1:{up}\n" for i, up in enumerate(ups))
        )
    return Proc("haproxy", pinned(["haproxy", "-db", "-f", conf], cpus))


def start_gateway(binary, port, ups, workers, cpus, config=None):
    env = dict(os.environ)
    env.update(
        {
            "LIFELINE_LOG": "warn",
            # The setting for builds that have it; older builds (tokio's own default) read TOKIO_WORKER_THREADS.
            "LIFELINE_WORKER_THREADS": str(workers),
            "TOKIO_WORKER_THREADS": str(workers),
        }
    )
    cmd = [binary, "gateway"]
    for up in ups:
        cmd += ["--upstream", f"http://127.0.0.1:{up}/mcp"]
    cmd += [
        "--listen",
        f"127.0.0.1:{port}",
        "--admin-listen",
        f"127.0.0.1:{free_port()}",
        "--max-sessions",
        "100000",
    ]
    if config:
        cmd += ["--config", config]
    return Proc("gateway", pinned(cmd, cpus), env=env)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def auth_setup(d, up, resource):
    """The auth rows' credentials, made with `openssl` (no Python packages): an RS256 key whose JWKS the upstream
    serves, a JWT for `resource` signed with it, an API key and its file, an opaque token the upstream's
    /introspect calls active, and one gateway config file per row. Returns {row: (config, token)} plus the JWKS
    and introspection documents for `start_upstream`."""
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
                                 "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}]}, separators=(",", ":"))
    issuer = f"http://127.0.0.1:{up}"
    header = b64url(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "bench"}).encode())
    claims = b64url(json.dumps({"iss": issuer, "sub": "bench", "aud": resource, "scope": "mcp",
                                "iat": int(time.time()), "exp": int(time.time()) + 86400}).encode())
    signing_input = f"{header}.{claims}"
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(), check=True,
                         capture_output=True).stdout
    jwt = f"{signing_input}.{b64url(sig)}"
    api_key = "bench-" + "k" * 40
    keys_file = os.path.join(d, "api-keys")
    with open(keys_file, "w") as f:
        f.write(f"bench sha256:{hashlib.sha256(api_key.encode()).hexdigest()} mcp\n")
    secret_file = os.path.join(d, "introspection-secret")
    with open(secret_file, "w") as f:
        f.write("bench-secret\n")
    introspection = json.dumps({"active": True, "sub": "bench", "client_id": "bench", "aud": resource,
                                "scope": "mcp", "exp": int(time.time()) + 86400}, separators=(",", ":"))
    blocks = {
        "jwt": (f"  jwt:\n    - issuer: {issuer}\n      jwks_url: {issuer}/jwks\n", jwt),
        "apikey": (f"  api_keys_file: {keys_file}\n", api_key),
        "introspect": (
            f"  introspection:\n    - url: {issuer}/introspect\n      client_id: bench\n"
            f"      client_secret_file: {secret_file}\n",
            "opaque-bench-token-" + "x" * 24,
        ),
    }
    rows = {}
    for row, (block, token) in blocks.items():
        cfg = os.path.join(d, f"{row}.yaml")
        with open(cfg, "w") as f:
            f.write(f"auth:\n  resource: {resource}\n{block}")
        rows[f"gateway-{row}"] = (cfg, token)
    return {"rows": rows, "jwks": jwks, "introspection": introspection}


def wrk_script(d, path, extra=None, tag=""):
    headers, body = PATHS[path]
    headers = {**headers, **(extra or {})}
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
        'wrk.headers["Accept"] = "application/json, text/event-stream"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines.append(
        "function done(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format("BENCH_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,'
        '\\"p50\\":%d,\\"p99\\":%d,\\"p999\\":%d}\\n",\n'
        "    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,\n"
        "    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))\n"
        "end"
    )
    f = os.path.join(d, f"{path}{tag}.lua")
    with open(f, "w") as out:
        out.write("\n".join(lines) + "\n")
    return f


def run_wrk(port, script, secs, conns, cpus):
    cmd = pinned(
        ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "5s", "-s", script, f"http://127.0.0.1:{port}/mcp"],
        cpus,
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise SystemExit(f"wrk printed no figures:\n{out.stdout}\n{out.stderr}")


def check_reply(port, path, extra=None):
    """One request by hand: the row must answer 200 with the canned result (SSE for legacy-sse)."""
    headers, body = PATHS[path]
    headers = {**headers, **(extra or {})}
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(
        (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\n{head}Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}"
        ).encode()
    )
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    text = data.decode(errors="replace")
    want_sse = path == "legacy-sse"
    ok = text.startswith("HTTP/1.1 200") and '"tools"' in text
    ok = ok and (("text/event-stream" in text.lower()) == want_sse)
    if not ok:
        raise SystemExit(f"{path} through port {port} answered unexpectedly:\n{text[:600]}")


def measure(contender, port, path, script, args, wrk_cpus, perf_out=None):
    pids = contender.pids() if contender else set()
    run_wrk(port, script, 1, args.conns, wrk_cpus)  # warm-up: connections open, pools filled
    perf = None
    if perf_out:
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-F", "1999", "--call-graph", "dwarf,16384", "-o", perf_out,
             "-p", ",".join(str(p) for p in sorted(pids))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    before = cpu_ticks(pids)
    r = run_wrk(port, script, args.secs, args.conns, wrk_cpus)
    after = cpu_ticks(pids)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
    reqs = max(r["requests"], 1)
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_us": r["p50"],
        "p99_us": r["p99"],
        "p999_us": r["p999"],
        "cpu_us_per_req": (after - before) / CLK_TCK * 1e6 / reqs if contender else None,
        "rss_kib": rss_kib(pids) if contender else None,
        "rss_anon_kib": rss_kib(pids, "RssAnon:") if contender else None,
        "errors": r["errors"],
    }


def fmt_range(values, unit_fmt):
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return unit_fmt(med)
    return f"{unit_fmt(med)} [{unit_fmt(min(vals))}–{unit_fmt(max(vals))}]"


def paired(rows, ng, direct):
    """The same ratios taken within each round (this row's run against nginx's run of the same round, which ran
    minutes apart at most), as median [min–max] over the rounds: the machine's drift between rounds cancels out,
    which the ratio of the medians above does not do."""
    cpu = [r["cpu_us_per_req"] / n["cpu_us_per_req"] for r, n in zip(rows, ng) if n["cpu_us_per_req"]]
    text = f"CPU per request {fmt_range(cpu, lambda v: f'{v:.2f}x')}"
    if direct:
        added = [
            (r["p50_us"] - d["p50_us"]) / (n["p50_us"] - d["p50_us"])
            for r, n, d in zip(rows, ng, direct)
            if n["p50_us"] > d["p50_us"]
        ]
        text += f", added p50 {fmt_range(added, lambda v: f'{v:.2f}x')}"
    return text


def median(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeline", default="target/release/lifeline", help="the gateway binary under test")
    ap.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="NAME=BIN",
        help="another gateway binary as an extra row (e.g. base=/tmp/lifeline-main); repeatable",
    )
    ap.add_argument("--secs", type=int, default=5, help="measured seconds per row (after a 1 s warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=8, help="wrk connections (1 thread)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes/threads of every contender")
    ap.add_argument("--paths", default="modern,legacy-json,legacy-sse")
    ap.add_argument("--pool", type=int, default=1, help="upstreams behind every proxy (round-robin / the gateway's pool)")
    ap.add_argument("--rows", default="direct,nginx,haproxy,gateway", help="which contenders (plus --gateway)")
    ap.add_argument(
        "--auth",
        action="store_true",
        help="add the gateway with auth on as three rows: gateway-jwt (an RS256 JWT, JWKS cached), gateway-apikey "
        "and gateway-introspect (an opaque token, introspection cached); each sends its credential",
    )
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument(
        "--perf",
        metavar="DIR",
        help="record a `perf` profile (DWARF call graphs) of every gateway row in round 1 into DIR/ROW-PATH.data "
        "(the profile's overhead shows in that round's figures)",
    )
    args = ap.parse_args()

    for tool in ("wrk", "nginx", "haproxy"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run scripts/bench-gateway.sh (it installs it)")
    ncpu = len(os.sched_getaffinity(0))
    proxy_cpus, other_cpus = ("0", f"1-{ncpu - 1}") if ncpu >= 2 else (None, None)
    tmp = tempfile.mkdtemp(prefix="lifeline-bench-")
    paths = args.paths.split(",")
    gateways = [("gateway", args.lifeline)] if "gateway" in args.rows.split(",") else []
    for g in args.gateway:
        name, _, binary = g.partition("=")
        gateways.append((f"gateway-{name}", binary))
    for name, binary in gateways:
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} missing: cargo build --release --locked -p lifeline")
    contenders = [r for r in args.rows.split(",") if r in ("direct", "nginx", "haproxy")] + [n for n, _ in gateways]

    if args.pool < 1:
        raise SystemExit("--pool must be at least 1")
    up_ports = [free_port() for _ in range(args.pool)]
    up_port = up_ports[0]
    auth = None
    if args.auth:
        auth = auth_setup(os.path.join(tmp, "auth"), up_port, "http://127.0.0.1/mcp")
        for row in auth["rows"]:
            gateways.append((row, args.lifeline))
            contenders.append(row)
    # The credential each row sends.
    extra = {c: {"Authorization": f"Bearer {auth['rows'][c][1]}"} for c in (auth or {}).get("rows", {})}
    procs = {}
    ports = {}
    try:
        for i, port in enumerate(up_ports):
            name = "upstream" if i == 0 else f"upstream-{i}"
            # The first upstream also serves the auth rows' JWKS and introspection answer.
            procs[name] = start_upstream(os.path.join(tmp, name), port, other_cpus, auth if i == 0 else None)
            wait_port(port)
        ports["direct"] = up_port
        for c in contenders:
            if c == "direct":
                continue
            port = free_port()
            ports[c] = port
            if c == "nginx":
                procs[c] = start_nginx(os.path.join(tmp, "nginx"), port, up_ports, args.workers, proxy_cpus)
            elif c == "haproxy":
                procs[c] = start_haproxy(os.path.join(tmp, "haproxy"), port, up_ports, args.workers, proxy_cpus)
            else:
                binary = dict(gateways)[c]
                config = auth["rows"][c][0] if auth and c in auth["rows"] else None
                procs[c] = start_gateway(binary, port, up_ports, args.workers, proxy_cpus, config)
            try:
                wait_port(port)
            except SystemExit:
                raise SystemExit(f"{c} did not start:\n{procs[c].output()}")
        scripts = {(p, c): wrk_script(tmp, p, extra.get(c), f"-{c}") for p in paths for c in contenders}
        for p in paths:
            for c in contenders:
                check_reply(ports[c], p, extra.get(c))

        load_before = os.getloadavg()
        results = {p: {c: [] for c in contenders} for p in paths}
        print(
            f"lifeline gateway benchmark: {args.rounds} rounds x {len(paths)} paths x {len(contenders)} rows, "
            f"{args.pool} upstream(s) behind each proxy, "
            f"{args.secs}s each, wrk 1 thread x {args.conns} connections, {args.workers} worker(s) per proxy; "
            f"{ncpu} CPUs (proxies on {proxy_cpus or 'any'}, wrk + upstream on {other_cpus or 'any'}); "
            f"load average {load_before[0]:.2f}",
            flush=True,
        )
        for rnd in range(args.rounds):
            for p in paths:
                for c in contenders:
                    perf_out = None
                    if args.perf and rnd == 0 and c.startswith("gateway"):
                        os.makedirs(args.perf, exist_ok=True)
                        perf_out = os.path.join(args.perf, f"{c}-{p}.data")
                    r = measure(procs.get(c), ports[c], p, scripts[(p, c)], args, other_cpus, perf_out)
                    results[p][c].append(r)
                    cpu = f"{r['cpu_us_per_req']:.1f} µs/req" if r["cpu_us_per_req"] is not None else ""
                    print(
                        f"  round {rnd + 1} {p:<12} {c:<16} {r['rps']:>8.0f} req/s  p50 {r['p50_us']:>5} µs  "
                        f"p99 {r['p99_us']:>6} µs  {cpu}  errors {r['errors']}",
                        flush=True,
                    )
        load_after = os.getloadavg()
    finally:
        for proc in procs.values():
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"load average: {load_before[0]:.2f} before, {load_after[0]:.2f} after; medians [min–max] of {args.rounds} rounds")
    for p in paths:
        print(f"\n== {p}")
        print(
            f"{'row':<16} {'req/s':>22} {'p50 µs':>18} {'p99 µs':>22} {'p99.9 µs':>24} {'CPU µs/req':>20} {'RSS MiB':>8} {'anon MiB':>9}"
        )
        for c in contenders:
            rows = results[p][c]
            print(
                f"{c:<16} {fmt_range([r['rps'] for r in rows], lambda v: f'{v:.0f}'):>22} "
                f"{fmt_range([r['p50_us'] for r in rows], lambda v: f'{v:.0f}'):>18} "
                f"{fmt_range([r['p99_us'] for r in rows], lambda v: f'{v:.0f}'):>22} "
                f"{fmt_range([r['p999_us'] for r in rows], lambda v: f'{v:.0f}'):>24} "
                f"{fmt_range([r['cpu_us_per_req'] for r in rows], lambda v: f'{v:.1f}'):>20} "
                f"{fmt_range([r['rss_kib'] and r['rss_kib'] / 1024 for r in rows], lambda v: f'{v:.1f}'):>8} "
                f"{fmt_range([r.get('rss_anon_kib') and r['rss_anon_kib'] / 1024 for r in rows], lambda v: f'{v:.1f}'):>9}"
            )
        if "nginx" not in contenders:
            continue
        ng = results[p]["nginx"]
        direct = results[p].get("direct")
        for c in contenders:
            if not c.startswith("gateway") and c != "haproxy":
                continue
            rows = results[p][c]
            cpu = median(rows, "cpu_us_per_req") / median(ng, "cpu_us_per_req")
            p99 = median(rows, "p99_us") / median(ng, "p99_us")
            line = f"  {c} / nginx: CPU per request {cpu:.2f}x (goal ≤ 1.0), p99 {p99:.2f}x (goal ≤ 1.5)"
            if direct:
                added = median(rows, "p50_us") - median(direct, "p50_us")
                ng_added = median(ng, "p50_us") - median(direct, "p50_us")
                ratio = f"{added / ng_added:.2f}x" if ng_added > 0 else "n/a"
                line += f", added p50 {added:.0f} vs {ng_added:.0f} µs = {ratio} (goal ≤ 1.0)"
            print(line)
            print(f"    paired by round: {paired(rows, ng, direct)}")
        if "gateway" in contenders:
            base = median(results[p]["gateway"], "p50_us")
            base_cpu = median(results[p]["gateway"], "cpu_us_per_req")
            for c in (auth or {}).get("rows", {}):
                rows = results[p][c]
                goal = " (goal ≤ 30 µs)" if c == "gateway-jwt" else ""
                print(
                    f"  {c} vs gateway without auth: p50 +{median(rows, 'p50_us') - base:.0f} µs{goal}, "
                    f"CPU per request +{median(rows, 'cpu_us_per_req') - base_cpu:.1f} µs"
                )

    if args.json:
        doc = {
            "meta": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "cpus": ncpu,
                "secs": args.secs,
                "rounds": args.rounds,
                "conns": args.conns,
                "workers": args.workers,
                "pool": args.pool,
                "load_average": [load_before[0], load_after[0]],
            },
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
