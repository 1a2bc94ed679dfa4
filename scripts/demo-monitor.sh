#!/usr/bin/env bash
# The main job on a fresh machine: the `lifeline monitor` quick start. Builds lifeline and monitors an MCP URL with
# every default (SQLite in ./lifeline.db, status page, API and metrics on 127.0.0.1:8080) until Ctrl-C.
#
#   scripts/demo-monitor.sh https://mcp.example.com/mcp    # your own server (any era, any MCP URL)
#   scripts/demo-monitor.sh                                # no URL: starts the official reference server
#                                                          # (server-everything) on loopback and monitors it
#
# Environment: LIFELINE_LISTEN (default 127.0.0.1:8080), LIFELINE_STORAGE (default sqlite://lifeline.db).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p lifeline
bin=target/release/lifeline
listen="${LIFELINE_LISTEN:-127.0.0.1:8080}"
echo "Status page: http://$listen/   API: http://$listen/api/v1/targets   Ctrl-C stops."
if [[ $# -gt 0 ]]; then
  targets=()
  for url in "$@"; do targets+=(--target "$url"); done
  exec "$bin" monitor "${targets[@]}" --listen "$listen"
fi
source scripts/lib/everything.sh
echo "\$ lifeline monitor --target $everything_url --listen $listen"
"$bin" monitor --target "$everything_url" --listen "$listen"
