# Sourced by the demo scripts: installs the peers and starts the official reference server (server-everything,
# Streamable HTTP) on a free loopback port, killed when the calling script exits.
# Sets: everything (the server's dist/index.js, for stdio use), everything_port, everything_url.
scripts/install-peers.sh
peers="${LIFELINE_PEERS_DIR:-$PWD/.peers}"
everything="$peers/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
everything_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$everything_port node -r "$PWD/tests/peers/preload-loopback.cjs" "$everything" streamableHttp >/dev/null 2>&1 &
everything_pid=$!
trap 'kill $everything_pid 2>/dev/null || true' EXIT
# Wait (at most 10 s) until it listens.
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$everything_port") 2>/dev/null; then break; fi
  sleep 0.1
done
everything_url="http://127.0.0.1:$everything_port/mcp"
