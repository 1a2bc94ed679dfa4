#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL on a loopback port for the monitor's storage tests.
#
#   eval "$(scripts/postgres.sh start)"   # prints: export DATABASE_URL=… LIFELINE_PG_DIR=…
#   scripts/postgres.sh start --durable   # the same, with synchronous commits: a crash loses no committed
#                                         # transaction (for crash-restart tests; the default trades that for speed)
#   scripts/postgres.sh stop              # stops the server in $LIFELINE_PG_DIR and deletes it
#   scripts/postgres.sh restart DIR       # crash-stops (immediate) and restarts the server in DIR, same port
#   scripts/postgres.sh crash DIR         # crash-stops (immediate) the server in DIR and leaves it down
#   scripts/postgres.sh resume DIR        # starts it again after `crash`, same port and options
#
# Installs the Debian `postgresql` package when no server binaries are found (needs root and apt). The
# cluster lives in a fresh temporary directory, listens only on 127.0.0.1 on a free port, trusts local
# connections (it is a test database: never expose it), and runs as the `postgres` user when started as root.
set -euo pipefail

find_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  # Fast by default: commits are acknowledged before their WAL is written, so a crash (restart below) may
  # lose the last ~0.6 s of committed transactions, which no production server does. --durable keeps
  # synchronous_commit on (fsync stays off: a process crash keeps the OS's page cache).
  local sync=off
  if [[ ${1:-} == --durable ]]; then sync=on; fi
  local bindir
  if ! bindir=$(find_bindir); then
    echo "postgres.sh: installing the Debian postgresql package" >&2
    if [[ $(id -u) -ne 0 ]]; then echo "postgres.sh: PostgreSQL is missing and we are not root" >&2; exit 2; fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
    bindir=$(find_bindir)
  fi
  local dir port
  dir=$(mktemp -d /tmp/lifeline-pg.XXXXXX)
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null; then
    rm -rf "$dir"
    echo "postgres.sh: initdb failed (its error is above); check free space with: df -h ${dir%/*}" >&2
    exit 1
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=$sync -c full_page_writes=off"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$opts" start >/dev/null
  echo "$port" > "$dir/port"
  echo "$opts" > "$dir/opts"
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "export LIFELINE_PG_DIR=$dir"
}

stop() {
  local dir=${1:-${LIFELINE_PG_DIR:-}}
  [[ -n "$dir" && -d "$dir/data" ]] || { echo "postgres.sh: no cluster (set LIFELINE_PG_DIR or pass the dir)" >&2; exit 2; }
  local bindir
  bindir=$(find_bindir)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
  rm -rf "$dir"
}

restart() {
  local dir=${1:-${LIFELINE_PG_DIR:-}}
  [[ -n "$dir" && -d "$dir/data" ]] || { echo "postgres.sh: no cluster (set LIFELINE_PG_DIR or pass the dir)" >&2; exit 2; }
  local bindir
  bindir=$(find_bindir)
  # pg_ctl restart reuses the options the server was started with (postmaster.opts): same port and socket dir.
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -m immediate -w -t 60 restart >/dev/null
}

crash() {
  local dir=${1:-${LIFELINE_PG_DIR:-}}
  [[ -n "$dir" && -f "$dir/opts" ]] || { echo "postgres.sh: no cluster started by this script in '$dir'" >&2; exit 2; }
  as_owner "$(find_bindir)/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
}

resume() {
  local dir=${1:-${LIFELINE_PG_DIR:-}}
  [[ -n "$dir" && -f "$dir/opts" ]] || { echo "postgres.sh: no cluster started by this script in '$dir'" >&2; exit 2; }
  as_owner "$(find_bindir)/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "$(cat "$dir/opts")" start >/dev/null
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  restart) shift; restart "$@" ;;
  crash) shift; crash "$@" ;;
  resume) shift; resume "$@" ;;
  *) echo "usage: $0 start | stop [DIR] | restart [DIR] | crash [DIR] | resume [DIR]" >&2; exit 64 ;;
esac
