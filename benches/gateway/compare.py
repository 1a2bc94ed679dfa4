#!/usr/bin/env python3
"""Compares two result files of benches/gateway/bench_gateway.py (--json): for every path and row present in both,
the medians of OLD and NEW and NEW/OLD for each figure. A regression guard that is not a timed test: it prints,
it asserts nothing. Lower is better for every figure but req/s; the last column marks a change of more than
--threshold (default 10 %) in the worse direction with `worse`.

    benches/gateway/compare.py OLD.json NEW.json [--threshold 0.10]
"""

import argparse
import json
import statistics

FIGURES = [
    ("rps", "req/s", True),
    ("p50_us", "p50 µs", False),
    ("p99_us", "p99 µs", False),
    ("p999_us", "p99.9 µs", False),
    ("cpu_us_per_req", "CPU µs/req", False),
    ("rss_kib", "RSS KiB", False),
    ("rss_anon_kib", "anon RSS KiB", False),
]


def median(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.10)
    args = ap.parse_args()
    with open(args.old) as f:
        old = json.load(f)
    with open(args.new) as f:
        new = json.load(f)
    for name, doc in (("old", old), ("new", new)):
        m = doc["meta"]
        print(
            f"{name}: {m['date']}, {m['rounds']} rounds x {m['secs']}s, {m['conns']} connections, "
            f"{m['workers']} worker(s), load average {m['load_average'][0]:.2f}"
        )
    worse = 0
    for path, rows in new["results"].items():
        if path not in old["results"]:
            continue
        print(f"\n== {path}")
        print(f"{'row':<16} {'figure':<12} {'old':>12} {'new':>12} {'new/old':>8}")
        for row, runs in rows.items():
            if row not in old["results"][path]:
                continue
            for key, label, higher_better in FIGURES:
                o = median(old["results"][path][row], key)
                n = median(runs, key)
                if o is None or n is None or o == 0:
                    continue
                ratio = n / o
                bad = ratio < 1 - args.threshold if higher_better else ratio > 1 + args.threshold
                worse += bad
                print(f"{row:<16} {label:<12} {o:>12.1f} {n:>12.1f} {ratio:>7.2f}x {'worse' if bad else ''}")
    print(f"\n{worse} figure(s) worse by more than {args.threshold:.0%}")


if __name__ == "__main__":
    main()
