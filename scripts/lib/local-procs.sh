# Sourced by scripts/zero-downtime.sh and scripts/sessions-survive.sh: helpers for a set of local processes on
# loopback. Needs PY (a Python 3 interpreter), WORK (the run's directory), PIDS (an array of process-group leaders
# to kill on exit), KEEP (non-empty: keep WORK) and NAME (the log prefix) set by the caller before sourcing.

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

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
