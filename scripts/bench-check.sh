#!/usr/bin/env bash
# Benchmark (not a test) of `lifeline check` against the Python SDK client and inspector-cli, in one run against
# the same local server (the Python SDK 2.x peer in JSON-response mode, or server-everything with --everything).
# Prints CPU and wall time per full probe and the ratios. Loopback only.
#   scripts/bench-check.sh                 a full probe (handshake + tools/list)
#   scripts/bench-check.sh --everything    the same against server-everything
#   scripts/bench-check.sh --transaction   a three-step synthetic transaction (tools/call search, tools/call
#                                          fetch with a saved id, resources/read, with outputSchema validation)
#                                          against tests/peers/py2_tools_server.py, vs the Python SDK client
#                                          making the same calls
set -euo pipefail
cd "$(dirname "$0")/.."
peers="${LIFELINE_PEERS_DIR:-$PWD/.peers}"
scripts/install-peers.sh
cargo build --release --locked -p lifeline
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [[ "${1:-}" == "--transaction" ]]; then
  (cd tests/peers && LIFELINE_PEER_MODE=stateful exec "$peers/py2/bin/python" -m uvicorn --factory \
    py2_tools_server:create_app --host 127.0.0.1 --port "$port" --log-level warning >/dev/null 2>&1) &
elif [[ "${1:-}" == "--everything" ]]; then
  PORT=$port node -r "$PWD/tests/peers/preload-loopback.cjs" \
    "$peers/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp >/dev/null 2>&1 &
else
  (cd tests/peers && LIFELINE_PEER_MODE=json exec "$peers/py2/bin/python" -m uvicorn --factory py2_server:create_app \
    --host 127.0.0.1 --port "$port" --log-level warning >/dev/null 2>&1) &
fi
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ "${1:-}" == "--transaction" ]]; then
  exec "$peers/py2/bin/python" benches/check/bench_check.py --url "http://127.0.0.1:$port/mcp" \
    --lifeline target/release/lifeline --transaction benches/check/transaction.yaml --runs "${RUNS:-30}"
fi
"$peers/py2/bin/python" benches/check/bench_check.py --url "http://127.0.0.1:$port/mcp" \
  --lifeline target/release/lifeline \
  --inspector-dir "$peers/npm/node_modules/@modelcontextprotocol/inspector-cli/build" --runs "${RUNS:-30}"
# Authenticated probes: CPU per probe with an OAuth token from the cache vs a static token vs none (one process,
# the real oidc-provider and the Python SDK's resource server; crates/lifeline-mcp/benches/probe_auth.rs).
LIFELINE_PEERS_DIR="$peers" RUNS="${RUNS:-30}" cargo bench --locked -p lifeline-mcp --bench probe_auth
