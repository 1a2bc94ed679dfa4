#!/usr/bin/env python3
"""Benchmark (not a test): user-space instructions per bridged `tools/call` of the federation, counted by valgrind's
callgrind (its `Ir`), so the figure does not depend on the machine's load (the method of instructions.py, whose
helpers this imports).

The setup of bench_federation.py (whose upstreams and requests this imports): three nginx echo upstreams federated
as `a`, `b`, `c` (`era: legacy`), the gateway under callgrind with one worker thread; wrk (1 thread, --conns
connections) sends `fed-call` (a 2026-07-28 client's `tools/call a__echo`, bridged to the legacy upstream on the
endpoint's implicit session) for 2 s to warm up (the implicit session and its upstream session are made then), the
counters are zeroed, wrk runs --secs seconds, the counters are dumped; the figure is the dumped total over the
requests wrk completed. `--paths fed-call,fed-list` adds the merged `tools/list`. `--keep DIR` leaves the dumps
(`callgrind_annotate --inclusive=yes DIR/fed-call.out` shows where the instructions go).

    benches/gateway/instructions_federation.py --lifeline target/release/lifeline [--secs 4] [--keep DIR]

Loopback only. Needs valgrind, wrk and nginx with the echo module (scripts/bench-federation.sh installs them).
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_federation as bf  # noqa: E402
import bench_gateway as bg  # noqa: E402
import instructions as ins  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeline", default="target/release/lifeline")
    ap.add_argument("--paths", default="fed-call")
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="keep every callgrind dump as DIR/PATH.out")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing")
    bg.PATHS.update(bf.PATHS)
    ncpu = len(os.sched_getaffinity(0))
    proxy_cpus, other_cpus = ("0", f"1-{ncpu - 1}") if ncpu >= 2 else (None, None)
    d = tempfile.mkdtemp(prefix="lifeline-instr-fed-")
    procs = []
    try:
        ports = [bg.free_port() for _ in range(3)]
        procs.append(bf.start_upstreams(os.path.join(d, "up"), ports, other_cpus))
        for p in ports:
            bg.wait_port(p)
        config = os.path.join(d, "gateway.yaml")
        with open(config, "w") as f:
            f.write("servers:\n" + "".join(
                f"- {{name: {n}, url: 'http://127.0.0.1:{p}/mcp', era: legacy}}\n" for n, p in zip("abc", ports)))
        port, admin = bg.free_port(), bg.free_port()
        out = os.path.join(d, "callgrind.out")
        cmd = [args.lifeline, "gateway", "--config", config, "--listen", f"127.0.0.1:{port}",
               "--admin-listen", f"127.0.0.1:{admin}"]
        env = {**os.environ, "LIFELINE_LOG": "warn", "LIFELINE_WORKER_THREADS": "1", "TOKIO_WORKER_THREADS": "1"}
        gw = bg.Proc("gateway", bg.pinned(ins.callgrind(cmd, out), proxy_cpus), env=env)
        procs.append(gw)
        bg.wait_port(port, timeout=120)
        bf.wait_servers_ready(admin, timeout=120)
        for path in args.paths.split(","):
            needle = dict((r[0], r[2]) for r in bf.ROWS)[path]
            status, text = bf.post(port, path)
            if status != 200 or needle not in text:
                raise SystemExit(f"{path} answered unexpectedly ({status}): {text[:400]}")
            script = bg.wrk_script(d, path)
            bg.run_wrk(port, script, 2, args.conns, other_cpus)
            ir, r = ins.measured(gw.p.pid, out, lambda: bg.run_wrk(port, script, args.secs, args.conns, other_cpus))
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for f in glob.glob(out + "*"):
                    shutil.copy(f, os.path.join(args.keep, f"{path}.out"))
            reqs = max(r["requests"], 1)
            print(f"{path:<10} {ir / reqs:>10.0f} instructions/request ({r['requests']} requests, "
                  f"{r['errors']} errors)", flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
