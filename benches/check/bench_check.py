"""Benchmark (not a test): CPU and wall time per full probe of `lifeline check` against the official Python SDK
client and `@modelcontextprotocol/inspector-cli`, in one run against the same local server, with ratios.

A full probe is what each client does to prove a server works: handshake (server/discover or initialize), tools/list,
and cleanup (DELETE or nothing in the modern era). Each client runs as a whole process, as a CI gate runs it; the
Python SDK is also measured in-process (its best case: no interpreter start-up or imports per probe), and so is
lifeline (one `lifeline check` process given the URL N times, probed one after another), so each ratio compares like
with like: process with process, in-process with in-process.

CPU time is the child's user+system time from wait4(2); the server's CPU is not counted.
Run through scripts/bench-check.sh, which builds the release binary and starts nothing but loopback peers.
Goals (issue 2): >= 20x less CPU per probe than the Python SDK client; a whole `lifeline check` process < 50 ms.

With --transaction FILE (issue 13): CPU and wall per three-step synthetic transaction (`benches/check/
transaction.yaml`: search, fetch with the saved id, resources/read; CEL assertions, outputSchema validation)
against the Python SDK client making the same calls after the same handshake and validating structuredContent
the way the SDK does; goal >= 20x less CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time


def run_process(argv: list[str], cwd: str | None = None) -> tuple[float, float, int]:
    """Runs argv to completion; returns (wall seconds, cpu seconds of the child tree, exit code)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def measure(name: str, argv: list[str], runs: int, cwd: str | None = None) -> dict:
    # One warm-up run (page cache, JIT caches), not counted.
    run_process(argv, cwd)
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, code = run_process(argv, cwd)
        if code != 0:
            sys.exit(f"{name} failed with exit code {code}: {' '.join(argv)}")
        walls.append(wall)
        cpus.append(cpu)
    return summarize(name, walls, cpus)


def summarize(name: str, walls: list[float], cpus: list[float]) -> dict:
    return {
        "name": name,
        "wall_ms_p50": statistics.median(walls) * 1000,
        "wall_ms_max": max(walls) * 1000,
        "cpu_ms_mean": statistics.mean(cpus) * 1000,
        "runs": len(walls),
    }


def python_in_process(url: str, runs: int) -> dict:
    from mcp import Client  # the official SDK, mcp 2.x

    async def one() -> None:
        async with Client(url) as client:
            await client.list_tools()

    async def all_runs() -> tuple[list[float], list[float]]:
        await one()  # warm-up: imports, first connection
        walls, cpus = [], []
        for _ in range(runs):
            c, t = time.process_time(), time.perf_counter()
            await one()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        return walls, cpus

    walls, cpus = asyncio.run(all_runs())
    return summarize("python-sdk (in-process)", walls, cpus)


def lifeline_in_process(lifeline: str, url: str, runs: int) -> dict:
    """One `lifeline check` process probing the URL `runs` times in a row: CPU and wall per probe, start-up amortized."""
    argv = [lifeline, "check", *([url] * runs), "--concurrency", "1", "--json"]
    run_process(argv)  # warm-up
    wall, cpu, code = run_process(argv)
    if code != 0:
        sys.exit(f"lifeline check (in-process) failed with exit code {code}")
    return {**summarize("lifeline check (in-process)", [wall / runs], [cpu / runs]), "runs": runs}


def python_transaction_in_process(url: str, runs: int) -> dict:
    """The Python SDK client doing what the transaction does: handshake, tools/list, two tool calls (the second
    with the first's id), one resource read. The SDK validates structuredContent against outputSchema itself."""
    from mcp import Client

    async def one() -> None:
        async with Client(url) as client:
            await client.list_tools()
            found = await client.call_tool("search", {"query": "lifeline-canary"})
            first = found.structured_content["items"][0]["id"]
            doc = await client.call_tool("fetch", {"id": first})
            assert doc.structured_content["id"] == first
            await client.read_resource("status://health")

    async def all_runs() -> tuple[list[float], list[float]]:
        await one()
        walls, cpus = [], []
        for _ in range(runs):
            c, t = time.process_time(), time.perf_counter()
            await one()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        return walls, cpus

    walls, cpus = asyncio.run(all_runs())
    return summarize("python-sdk transaction (in-process)", walls, cpus)


def transaction_bench(args: argparse.Namespace) -> None:
    argv = [args.lifeline, "check", *([args.url] * args.runs), "--concurrency", "1", "--json",
            "--no-origin-check", "--transaction", args.transaction]
    run_process(argv)  # warm-up
    wall, cpu, code = run_process(argv)
    if code != 0:
        sys.exit(f"lifeline check --transaction failed with exit code {code}")
    ours = summarize("lifeline transaction (in-process)", [wall / args.runs], [cpu / args.runs])
    ours["runs"] = args.runs
    single = measure("lifeline check --transaction", [args.lifeline, "check", args.url, "--json",
                                                     "--no-origin-check", "--transaction", args.transaction],
                     args.runs)
    theirs = python_transaction_in_process(args.url, args.runs)
    print(f"server: {args.url}  transaction: {args.transaction}")
    print(f"{'client':36} {'runs':>5} {'wall p50 ms':>12} {'cpu/run ms':>11}")
    for r in (single, ours, theirs):
        print(f"{r['name']:36} {r['runs']:>5} {r['wall_ms_p50']:>12.1f} {r['cpu_ms_mean']:>11.2f}")
    ratio = theirs["cpu_ms_mean"] / ours["cpu_ms_mean"] if ours["cpu_ms_mean"] > 0 else float("inf")
    print(f"goal: >= 20x less CPU per transaction than the Python SDK client (in-process both): "
          f"{'met' if ratio >= 20 else 'NOT met'} ({ratio:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the local MCP server to probe")
    ap.add_argument("--lifeline", required=True, help="path to the release lifeline binary")
    ap.add_argument("--inspector-dir", help="inspector-cli's build/ directory (full-probe mode)")
    ap.add_argument("--transaction", help="a transaction file: benchmark it instead of a full probe")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if args.transaction:
        transaction_bench(args)
        return
    if not args.inspector_dir:
        sys.exit("--inspector-dir is required without --transaction")

    py_client = (
        "import asyncio,sys\n"
        "from mcp import Client\n"
        "async def m():\n"
        "    async with Client(sys.argv[1]) as c:\n"
        "        await c.list_tools()\n"
        "asyncio.run(m())\n"
    )
    results = [
        measure("lifeline check", [args.lifeline, "check", args.url, "--json"], args.runs),
        measure("python-sdk (process)", [sys.executable, "-c", py_client, args.url], max(5, args.runs // 3)),
        lifeline_in_process(args.lifeline, args.url, args.runs),
        python_in_process(args.url, args.runs),
        measure(
            "inspector-cli (process)",
            ["node", "index.js", args.url, "--transport", "http", "--method", "tools/list"],
            max(5, args.runs // 3),
            cwd=args.inspector_dir,
        ),
    ]
    base = results[0]
    print(f"server: {args.url}")
    print(f"{'client':28} {'runs':>5} {'wall p50 ms':>12} {'wall max ms':>12} {'cpu/probe ms':>13} {'cpu x lifeline':>15}")
    for r in results:
        ratio = r["cpu_ms_mean"] / base["cpu_ms_mean"] if base["cpu_ms_mean"] > 0 else float("inf")
        print(
            f"{r['name']:28} {r['runs']:>5} {r['wall_ms_p50']:>12.1f} {r['wall_ms_max']:>12.1f} "
            f"{r['cpu_ms_mean']:>13.2f} {ratio:>14.1f}x"
        )
    by_name = {r["name"]: r["cpu_ms_mean"] for r in results}
    ratio_process = by_name["python-sdk (process)"] / base["cpu_ms_mean"]
    ratio_in_process = by_name["python-sdk (in-process)"] / by_name["lifeline check (in-process)"]
    ok_cpu = min(ratio_process, ratio_in_process) >= 20
    ok_wall = base["wall_ms_p50"] < 50
    print(f"goal: >= 20x less CPU than the Python SDK client, like for like: {'met' if ok_cpu else 'NOT met'} "
          f"(process {ratio_process:.1f}x, in-process {ratio_in_process:.1f}x)")
    print(f"goal: whole lifeline check process < 50 ms wall (p50): {'met' if ok_wall else 'NOT met'} "
          f"({base['wall_ms_p50']:.1f} ms)")


if __name__ == "__main__":
    main()
