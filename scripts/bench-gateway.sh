#!/usr/bin/env bash
# Benchmark (not a test): the gateway's cost per request against nginx and HAProxy in front of the same fast
# upstream (benches/gateway/bench_gateway.py; its --help lists the knobs). Installs wrk, nginx and HAProxy from
# Debian when missing, builds the gateway --release, then runs every row in interleaved rounds. Loopback only.
#
#   scripts/bench-gateway.sh [--rounds 3] [--secs 5] [--json target/bench-gateway.json] [--gateway base=BIN] ...
#   benches/gateway/compare.py OLD.json NEW.json      # ratios between two runs (a regression guard)
#   scripts/bench-gateway.sh --instructions [--paths modern,stdio] [--keep DIR]
#     # user-space instructions per request under callgrind (benches/gateway/instructions.py): the figure that
#     # stays put on a loaded machine; installs valgrind
set -euo pipefail
cd "$(dirname "$0")/.."
bench=benches/gateway/bench_gateway.py
tools=(wrk nginx haproxy taskset)
packages=(wrk nginx-light haproxy)
if [[ "${1:-}" == --instructions ]]; then
  shift
  bench=benches/gateway/instructions.py
  tools+=(valgrind)
  packages+=(valgrind)
fi
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  scripts/install-peers.sh --apt "${packages[@]}"
fi
cargo build --release --locked -p lifeline
exec python3 "$bench" --lifeline target/release/lifeline "$@"
