#!/usr/bin/env python3
"""Benchmark tool (not a test): where a proxy's instructions go, per request, from a callgrind dump of
`instructions.py --keep DIR` (a build with line tables: `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only`).

Every instruction is counted once, at the source line it came from after inlining (callgrind's `fi=`/`fe=`
records): so an inlined `HeaderMap::insert` counts as `http/src/header/map.rs`, whichever function it was
inlined into. The lines are summed per source file, and the files into the cost centres of the table in
docs/gateway.md §Performance (CENTRES below, first match wins; a few centres are line ranges of one file, such
as hyper's server and client halves of `proto/h1/role.rs`). `memcpy`, `malloc`/`free` and friends are counted by
their callers' source lines too (the call sites' inclusive costs, from the `calls=` records).

    benches/gateway/attribute.py DIR/gateway-modern.out --requests 5500 [--files 40] [--callers 25]

Prints the table (instructions per request and share), the files that fell into "other", and the top call sites
of memcpy and malloc/free.
"""

import argparse
import re
import sys
from collections import defaultdict

# (centre, regex on "file" or "file:line-range"); the first match wins. Line ranges (role.rs) are resolved in
# `centre_of`.
CENTRES = [
    ("memcpy/memmove/memset (libc)", r"memmove-vec|memset-vec|memcpy|memmove|memset"),
    ("malloc/free (libc)", r"malloc|free|arena\.c|realloc|calloc|/malloc/"),
    ("hyper server: parse and encode (role.rs Server)", r"hyper-[^/]*/src/proto/h1/role\.rs#server"),
    ("upstream client: hyper parse and encode (role.rs Client)", r"hyper-[^/]*/src/proto/h1/role\.rs#client"),
    ("hyper: shared h1 parse helpers (role.rs)", r"hyper-[^/]*/src/proto/h1/role\.rs"),
    ("httparse (request and response heads)", r"httparse-"),
    ("hyper h1 connection machinery (conn, io, dispatch, decode, encode; both sides)",
     r"hyper-[^/]*/src/proto/h1/|hyper-[^/]*/src/common/|hyper-[^/]*/src/body/|hyper-[^/]*/src/rt/"),
    ("hyper client channel and server conn (client/dispatch.rs, conn, service)",
     r"hyper-[^/]*/src/client/|hyper-[^/]*/src/server/|hyper-[^/]*/src/service/|hyper-[^/]*/src/"),
    ("hyper-util (TokioIo, graceful)", r"hyper-util-"),
    ("http crate: HeaderMap, HeaderName, Uri, Request/Response", r"/http-[0-9][^/]*/src/"),
    ("http-body(-util): boxed bodies, Full, frames", r"http-body"),
    ("bytes: Bytes/BytesMut", r"/bytes-[0-9]"),
    ("tokio timers (time driver, Sleep)", r"tokio-[^/]*/src/(runtime/time|time)/"),
    ("tokio scheduler, tasks, wakers", r"tokio-[^/]*/src/runtime/(task|scheduler|context|park|blocking)|tokio-[^/]*/src/runtime/[^/]*\.rs"),
    ("tokio I/O driver and TcpStream (readiness, mio)", r"tokio-[^/]*/src/(runtime/io|io|net)/|mio-"),
    ("tokio sync (mpsc, oneshot, Notify)", r"tokio-[^/]*/src/sync/|tokio-[^/]*/src/(loom|util)/"),
    ("futures/pin-project/want/atomic-waker", r"futures-|pin-project|/want-|atomic-waker|try-lock"),
    ("edge checks (edge.rs: Host/Origin, Accept, Content-Type, mirrored headers, hop-by-hop strip)",
     r"lifeline-gateway/src/edge\.rs"),
    ("JSON-RPC summary (rpc.rs, rpc/scan.rs)", r"lifeline-gateway/src/rpc"),
    ("proxy handler (proxy.rs: body read, header rewrite, session bookkeeping, relay)",
     r"lifeline-gateway/src/proxy"),
    ("upstream client: ours (upstream/http.rs, h1.rs, pool)", r"lifeline-gateway/src/upstream"),
    ("sessions (sessions.rs)", r"lifeline-gateway/src/sessions"),
    ("metrics (metrics.rs, prometheus-client)", r"lifeline-gateway/src/metrics|prometheus|lifeline-core/src/metrics"),
    ("SSE relay (sse.rs)", r"lifeline-gateway/src/sse"),
    ("body guards and timers (body.rs, timer.rs, server.rs)", r"lifeline-gateway/src/(body|timer|server)"),
    ("rest of the gateway crate", r"lifeline-gateway/src/"),
    ("lifeline-core (in-flight, shutdown)", r"lifeline-core/"),
    ("tracing", r"tracing"),
    ("serde/serde_json", r"serde"),
        ("libc other (clock_gettime, syscall wrappers)", r"libc|sysdeps|glibc|\?\?\?|vdso|nptl"),
]

# Instructions from the standard library's source (`core::ptr`, `Option`, slice iterators, atomics, `Arc`) are
# inlined into everything: they are counted by the function they were inlined into instead (its symbol; the
# first match wins), and only generic std code that names no crate stays in the std centre.
SYMBOL_CENTRES = [
    ("hyper server: parse and encode (role.rs Server)", r"hyper::proto::h1::role::Server"),
    ("upstream client: hyper parse and encode (role.rs Client)", r"hyper::proto::h1::role::Client"),
    ("hyper: shared h1 parse helpers (role.rs)", r"hyper::proto::h1::role::"),
    ("httparse (request and response heads)", r"httparse::"),
    ("edge checks (edge.rs: Host/Origin, Accept, Content-Type, mirrored headers, hop-by-hop strip)",
     r"lifeline_gateway::edge::"),
    ("JSON-RPC summary (rpc.rs, rpc/scan.rs)", r"lifeline_gateway::rpc::"),
    ("proxy handler (proxy.rs: body read, header rewrite, session bookkeeping, relay)",
     r"lifeline_gateway::proxy::"),
    ("upstream client: ours (upstream/http.rs, h1.rs, pool)", r"lifeline_gateway::upstream::"),
    ("sessions (sessions.rs)", r"lifeline_gateway::sessions"),
    ("metrics (metrics.rs, prometheus-client)", r"lifeline_gateway::metrics|prometheus_client::"),
    ("SSE relay (sse.rs)", r"lifeline_gateway::sse"),
    ("body guards and timers (body.rs, timer.rs, server.rs)", r"lifeline_gateway::(body|timer|server)"),
    ("rest of the gateway crate", r"lifeline_gateway::"),
    ("hyper h1 connection machinery (conn, io, dispatch, decode, encode; both sides)", r"hyper::proto::"),
    ("hyper client channel and server conn (client/dispatch.rs, conn, service)", r"hyper::"),
    ("hyper-util (TokioIo, graceful)", r"hyper_util::"),
    ("http crate: HeaderMap, HeaderName, Uri, Request/Response", r"(^|[<\s])http::"),
    ("http-body(-util): boxed bodies, Full, frames", r"http_body"),
    ("bytes: Bytes/BytesMut", r"bytes::"),
    ("tokio timers (time driver, Sleep)", r"tokio::(runtime::time|time)::"),
    ("tokio I/O driver and TcpStream (readiness, mio)", r"tokio::(runtime::io|io|net)::|mio::"),
    ("tokio sync (mpsc, oneshot, Notify)", r"tokio::sync::"),
    ("tokio scheduler, tasks, wakers", r"tokio::"),
    ("futures/pin-project/want/atomic-waker", r"futures|want::|atomic_waker|try_lock"),
    ("lifeline-core (in-flight, shutdown)", r"lifeline_core::"),
    ("tracing", r"tracing"),
    ("serde/serde_json", r"serde"),
]

ROLE_CLIENT_IMPL = re.compile(r"^impl Http1Transaction for Client")


def role_split(path):
    """The first line of `impl Http1Transaction for Client` in hyper's role.rs, or None."""
    try:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if ROLE_CLIENT_IMPL.match(line):
                    return i
    except OSError:
        pass
    return None


def parse(path):
    """(exclusive Ir by (file, line), call-site Ir by callee name -> (file, line) -> Ir, total Ir)."""
    names = {"fl": {}, "fn": {}}
    excl = defaultdict(int)
    calls = defaultdict(lambda: defaultdict(int))
    fl = fi = ""
    fn = ""
    cfn = None
    pending_call = False
    last_line = 0
    total = 0

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        table = names["fn" if kind in ("fn", "cfn") else "fl"]
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                pos = parts[0]
                if pos == "*":
                    ln = last_line
                elif pos[0] in "+-":
                    ln = last_line + int(pos)
                else:
                    ln = int(pos)
                last_line = ln
                ir = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    calls[cfn][(fi or fl, ln, fn)] += ir
                    pending_call = False
                else:
                    excl[(fi or fl, ln, fn)] += ir
                continue
            key, _, rest = line.partition("=")
            if key == "fl":
                fl = name("fl", rest)
                fi = ""
            elif key in ("fi", "fe"):
                fi = name("fl", rest)
            elif key == "fn":
                fn = name("fn", rest)
                fi = ""
            elif key in ("cfl", "cfi"):
                name("fl", rest)
            elif key == "cfn":
                cfn = name("fn", rest)
            elif key == "calls":
                pending_call = True
            elif key in ("totals", "summary"):
                total = max(total, int(rest.split()[0]))
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = max(total, int(line.split()[1]))
    return excl, calls, total, fn


def centre_of(file, line, fn, splits):
    if re.search(r"/rustc/|library/(core|std|alloc)/", file):
        for centre, rx in SYMBOL_CENTRES:
            if re.search(rx, fn):
                return centre
        return "Rust std/core/alloc (generic code that names no crate: Arc, Vec, fmt, hashing, Instant)"
    key = file
    if re.search(r"hyper-[^/]*/src/proto/h1/role\.rs", file):
        split = splits.setdefault(file, role_split(file))
        if split:
            key = file + ("#client" if line >= split else "#server")
    for centre, rx in CENTRES:
        if re.search(rx, key):
            return centre
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--requests", type=int, required=True, help="requests the dump covers")
    ap.add_argument("--files", type=int, default=40, help="top source files to list")
    ap.add_argument("--callers", type=int, default=25, help="top call sites of memcpy and malloc/free")
    ap.add_argument("--split", type=int, default=4, help="largest centres to list by the functions they ran in")
    args = ap.parse_args()
    excl, calls, total, _ = parse(args.dump)
    n = args.requests
    splits = {}
    by_centre = defaultdict(int)
    by_file = defaultdict(int)
    by_centre_fn = defaultdict(lambda: defaultdict(int))
    for (file, line, fn), ir in excl.items():
        centre = centre_of(file, line, fn, splits)
        by_centre[centre] += ir
        by_centre_fn[centre][fn] += ir
        by_file[file] += ir
    counted = sum(by_centre.values())
    print(f"total {total / n:,.0f} instructions/request ({total:,} over {n} requests; "
          f"{counted / n:,.0f} attributed to source lines)")
    print("\n| cost centre (exclusive, by source file after inlining) | per request | share |\n|---|---|---|")
    for centre, ir in sorted(by_centre.items(), key=lambda kv: -kv[1]):
        print(f"| {centre} | {ir / n:,.0f} | {100 * ir / counted:.1f} % |")
    for centre, _ in sorted(by_centre.items(), key=lambda kv: -kv[1])[: args.split]:
        print(f"\n{centre}: the functions it ran in (symbols; callers it was inlined into)")
        for fn, ir in sorted(by_centre_fn[centre].items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {ir / n:>8,.0f}  {fn[:170]}")
    print(f"\ntop {args.files} source files:")
    for file, ir in sorted(by_file.items(), key=lambda kv: -kv[1])[: args.files]:
        print(f"  {ir / n:>9,.0f}  {file}")
    for label, rx in (("memcpy/memmove", r"^(__)?(memcpy|memmove|mempcpy)"),
                      ("malloc/free/realloc", r"^(malloc|free|realloc|calloc|__libc_malloc|__libc_free|cfree|_int_)")):
        sites = defaultdict(int)
        for callee, where in calls.items():
            if callee and re.search(rx, callee.split("'")[0]):
                for site, ir in where.items():
                    sites[site] += ir
        tot = sum(sites.values())
        print(f"\n{label}: {tot / n:,.0f} instructions/request at its call sites; top {args.callers}:")
        for (file, line, fn), ir in sorted(sites.items(), key=lambda kv: -kv[1])[: args.callers]:
            print(f"  {ir / n:>8,.0f}  {file}:{line}  in {fn[:150]}")
        by_fn = defaultdict(int)
        for (_, _, fn), ir in sites.items():
            by_fn[fn] += ir
        print(f"  by calling function (symbol; inlined callers show as the function they were inlined into):")
        for fn, ir in sorted(by_fn.items(), key=lambda kv: -kv[1])[: args.callers]:
            print(f"  {ir / n:>8,.0f}  {fn[:170]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
