#!/usr/bin/env bash
# Benchmark (not a test): what the federation adds per request (issue 16): a merged tools/list over three fast
# upstreams and a bridged tools/call (modern client, legacy upstream) against the direct requests, p50/p99 and the
# gateway's CPU per request (benches/gateway/bench_federation.py; --help lists the knobs). Installs wrk and nginx
# (with its echo module) from Debian when missing. Loopback only.
#
#   scripts/bench-federation.sh [--lifeline BIN] [--rounds 3] [--secs 5] [--json target/bench-federation.json]
#
# Without --lifeline it builds the gateway --release.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in wrk nginx taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  scripts/install-peers.sh --apt wrk nginx-light
fi
if [[ " $* " != *" --lifeline "* ]]; then
  cargo build --release --locked -p lifeline
  set -- --lifeline target/release/lifeline "$@"
fi
exec python3 benches/gateway/bench_federation.py "$@"
