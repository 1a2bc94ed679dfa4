# Sourced by scripts/zero-downtime.sh and scripts/sessions-survive.sh: helpers for a set of local processes on
# loopback. The caller sets ROOT (the repository), NAME (the log prefix) and KEEP (non-empty: keep the run's
# directory) before sourcing, then calls `start_run PREFIX` (below), which sets PEERS, BIN, PY, WORK and PIDS (the
# process-group leaders killed on exit), installs the cleanup trap and checks the prerequisites.

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

# start_run PREFIX : the common opening of a run. PEERS is LIFELINE_PEERS_DIR (default ROOT/.peers), BIN is
# LIFELINE_BIN (default ROOT/target/debug/lifeline, built if missing), PY the peers' Python SDK 2.x interpreter,
# WORK a new temporary directory named after PREFIX. HAProxy and the peers are installed when missing.
start_run() {
  PEERS="${LIFELINE_PEERS_DIR:-$ROOT/.peers}"
  BIN="${LIFELINE_BIN:-$ROOT/target/debug/lifeline}"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  PIDS=()
  trap cleanup EXIT
  command -v haproxy >/dev/null 2>&1 || "$ROOT/scripts/install-peers.sh" --apt haproxy >&2
  [ -x "$PEERS/py2/bin/python" ] || "$ROOT/scripts/install-peers.sh" >&2
  if [ ! -x "$BIN" ]; then
    log "building lifeline"
    (cd "$ROOT" && cargo build -q -p lifeline) >&2
  fi
  PY="$PEERS/py2/bin/python"
}

cleanup() {
  local pid
  disown -a 2>/dev/null || true   # no "Killed" job notices for the processes ended below
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}

# free_ports N : N distinct free loopback ports. All N sockets stay bound until every port is chosen: one port per
# separate bind-and-close may come back twice (seen under load: "admin_listen: must differ from listen").
free_ports() {
  "$PY" -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# wait_for CMD... : retry CMD every 100 ms for at most 30 s.
wait_for() {
  local i
  for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# ready PORT : the admin listener on PORT answers /ready with 200.
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/ready")" = 200 ]; }
