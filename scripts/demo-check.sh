#!/usr/bin/env bash
# The main job on a fresh machine: builds lifeline, starts the official MCP reference server (server-everything)
# on loopback, and runs `lifeline check` against it over Streamable HTTP and stdio. Pass a URL to check your own
# server instead: scripts/demo-check.sh https://mcp.example.com/mcp
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p lifeline
bin=target/release/lifeline
if [[ $# -gt 0 ]]; then
  exec "$bin" check "$@"
fi
scripts/install-peers.sh
peers="${LIFELINE_PEERS_DIR:-$PWD/.peers}"
everything="$peers/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$port node -r "$PWD/tests/peers/preload-loopback.cjs" "$everything" streamableHttp >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.1
done
echo "\$ lifeline check http://127.0.0.1:$port/mcp"
"$bin" check "http://127.0.0.1:$port/mcp"
echo
echo "\$ lifeline check --stdio -- node server-everything stdio"
"$bin" check --stdio -- node "$everything" stdio
