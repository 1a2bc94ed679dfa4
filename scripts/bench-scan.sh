#!/usr/bin/env bash
# The census benchmark of `lifeline scan` (a benchmark, not a test; see docs/census.md): builds the release binary,
# raises the open-file limit, then runs crates/lifeline-scan/benches/census.rs twice on loopback:
#   1. 2,181 endpoints shaped like the published census (half hang until the 10 s timeout, a fifth refuse, the rest
#      healthy, auth-gated or broken) at the default concurrency (256, 4 per host);
#   2. 50,000 endpoints generated the same way at --concurrency 2048, to show memory stays bounded.
# Each prints wall time, probes/s, CPU seconds and peak RSS of the scan process and the timeout-bound minimum.
#
# Usage: scripts/bench-scan.sh [--quick] [extra args for both runs, e.g. --timeout 5s]
#   --quick   only the 2,181-endpoint run
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ "${1:-}" == "--quick" ]]; then
  quick=1
  shift
fi

# Thousands of sockets on both sides: the bench process serves, the scan process connects.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "==> open-file limit $(ulimit -n)"

echo "==> Building the release binary"
cargo build --release -p lifeline
export LIFELINE_BIN="$PWD/target/release/lifeline"

echo "==> 2,181 endpoints, concurrency 256, 4 per host"
cargo bench -p lifeline-scan --bench census -- --endpoints 2181 --concurrency 256 --per-host 4 "$@"

if [[ $quick -eq 0 ]]; then
  echo "==> 50,000 endpoints, concurrency 2048, 4 per host"
  cargo bench -p lifeline-scan --bench census -- --endpoints 50000 --concurrency 2048 --per-host 4 "$@"
fi
