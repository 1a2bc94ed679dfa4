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
source scripts/lib/everything.sh
echo "\$ lifeline check $everything_url"
"$bin" check "$everything_url"
echo
echo "\$ lifeline check --stdio -- node server-everything stdio"
"$bin" check --stdio -- node "$everything" stdio
