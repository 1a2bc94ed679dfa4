#!/usr/bin/env bash
# Benchmark (not a test): the gateway's cost per request against nginx and HAProxy in front of the same fast
# upstream (benches/gateway/bench_gateway.py; its --help lists the knobs). Installs wrk, nginx and HAProxy from
# Debian when missing, builds the gateway --release, then runs every row in interleaved rounds. Loopback only.
#
#   scripts/bench-gateway.sh [--rounds 3] [--secs 5] [--json target/bench-gateway.json] [--gateway base=BIN] ...
#   benches/gateway/compare.py OLD.json NEW.json      # ratios between two runs (a regression guard)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in wrk nginx haproxy taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  scripts/install-peers.sh --apt wrk nginx-light haproxy
fi
cargo build --release --locked -p lifeline
exec python3 benches/gateway/bench_gateway.py --lifeline target/release/lifeline "$@"
