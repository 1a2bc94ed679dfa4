#!/usr/bin/env bash
# Zero-downtime proof for `lifeline gateway`: two gateway instances, each in front of its own upstream (the Python
# SDK 2.x test server, which speaks both eras), behind a real HAProxy that health-checks each instance's /ready as
# Kubernetes would. A load generator (tests/peers/clients/loadgen.py) keeps modern (2026-07-28) requests and legacy
# (2025-11-25) sessions with ~2 s tool calls going while the script rolls both instances one after the other:
# start the new instance, wait for its /ready (and for HAProxy to route to it), SIGTERM the old one.
#
#   scripts/zero-downtime.sh            run it (about a minute); exit 0 when nothing that must not fail failed
#
# Prints requests sent, completed and failed. Passes when no modern request failed and no legacy call that was
# in flight at a SIGTERM failed (legacy sessions on a draining instance move: their next request gets 404 and the
# client re-initializes through the load balancer, per 2025-11-25 transports §Session Management).
#
# Environment: LIFELINE_BIN (default target/debug/lifeline, built if missing), ZD_DURATION (load seconds, default
# 40), LIFELINE_PEERS_DIR (see scripts/install-peers.sh). Everything listens on 127.0.0.1 only; every process the
# script starts is killed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${ZD_DURATION:-40}"
NAME=zero-downtime
KEEP="${ZD_KEEP:-}"
# shellcheck source=lib/local-procs.sh
source "$ROOT/scripts/lib/local-procs.sh"
start_run lifeline-zd

# --- instances -----------------------------------------------------------------------------------------------
# Four HAProxy server slots with fixed ports: a1/b1 are the first generation, a2/b2 their replacements.
# Every port the run needs, chosen at once so that none repeats: per slot its listener, admin and upstream ports,
# then the load balancer's and its stats page's.
declare -A LISTEN ADMIN UP_PORT GW_PID UP_PID
read -r -a PORTS <<<"$(free_ports 14)"
i=0
for slot in a1 a2 b1 b2; do
  LISTEN[$slot]=${PORTS[i]}; ADMIN[$slot]=${PORTS[i+1]}; UP_PORT[$slot]=${PORTS[i+2]}; i=$((i + 3))
done
LB=${PORTS[12]}; STATS=${PORTS[13]}

start_instance() {
  local slot="$1" up_port
  up_port=${UP_PORT[$slot]}
  (cd "$ROOT/tests/peers" && LIFELINE_PEER_MODE=stateful exec setsid "$PY" -m uvicorn --factory py2_server:create_app \
      --host 127.0.0.1 --port "$up_port" --timeout-graceful-shutdown 2 --log-level warning) \
      >"$WORK/upstream-$slot.log" 2>&1 &
  UP_PID[$slot]=$!; PIDS+=("$!")
  wait_for curl -s -o /dev/null "http://127.0.0.1:$up_port/debug/sessions" || die "upstream $slot did not start"
  setsid "$BIN" gateway --upstream "http://127.0.0.1:$up_port/mcp" \
      --listen "127.0.0.1:${LISTEN[$slot]}" --admin-listen "127.0.0.1:${ADMIN[$slot]}" \
      --drain-delay 2s --drain-timeout 15s --ready-ttl 500ms --upstream-timeout 30s \
      --allowed-host '*' >"$WORK/gateway-$slot.log" 2>&1 &
  GW_PID[$slot]=$!; PIDS+=("$!")
  wait_for ready "${ADMIN[$slot]}" || die "gateway $slot never became ready; log: $(tail -5 "$WORK/gateway-$slot.log")"
}

# haproxy_status SLOT : the slot's status in HAProxy's CSV stats (UP, DOWN, ...).
haproxy_status() {
  curl -s "http://127.0.0.1:$STATS/stats;csv" | awk -F, -v s="$1" '$1=="gateways" && $2==s {print $18}'
}
haproxy_up() { case "$(haproxy_status "$1")" in UP*) return 0 ;; *) return 1 ;; esac; }
haproxy_down() { case "$(haproxy_status "$1")" in DOWN*|MAINT*) return 0 ;; *) return 1 ;; esac; }

stop_instance() {
  local slot="$1" code=0 i
  date +%s.%N >>"$WORK/sigterms"
  kill -TERM "${GW_PID[$slot]}"
  for i in $(seq 1 300); do kill -0 "${GW_PID[$slot]}" 2>/dev/null || break; sleep 0.1; done
  wait "${GW_PID[$slot]}" || code=$?
  [ "$code" -eq 0 ] || die "gateway $slot exited with $code; log: $(tail -5 "$WORK/gateway-$slot.log")"
  grep -h -o 'Drain[^.]*\.' "$WORK/gateway-$slot.log" | sed "s/^/zero-downtime: $slot: /" >&2 || true
  kill -TERM -- "-${UP_PID[$slot]}" 2>/dev/null || true
}

roll() {
  local old="$1" new="$2"
  log "rolling $old -> $new: start $new"
  start_instance "$new"
  wait_for haproxy_up "$new" || die "HAProxy never routed to $new"
  log "rolling $old -> $new: $new ready and in rotation; SIGTERM $old"
  stop_instance "$old"
  log "rolling $old -> $new: $old drained and exited 0"
}

# --- HAProxy -------------------------------------------------------------------------------------------------
cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
listen stats
  bind 127.0.0.1:$STATS
  stats enable
  stats uri /stats
frontend mcp
  bind 127.0.0.1:$LB
  default_backend gateways
backend gateways
  balance roundrobin
  # Readiness as Kubernetes sees it: the gateway's /ready on its admin port.
  option httpchk GET /ready
  http-check expect status 200
  default-server inter 300ms fall 2 rise 1
  # Legacy sessions stick to the instance that minted them (the Mcp-Session-Id header).
  stick-table type string len 128 size 100k expire 30m
  stick store-response res.hdr(mcp-session-id)
  stick match req.hdr(mcp-session-id)
  option redispatch
  retries 2
  retry-on conn-failure empty-response
  server a1 127.0.0.1:${LISTEN[a1]} check port ${ADMIN[a1]}
  server a2 127.0.0.1:${LISTEN[a2]} check port ${ADMIN[a2]}
  server b1 127.0.0.1:${LISTEN[b1]} check port ${ADMIN[b1]}
  server b2 127.0.0.1:${LISTEN[b2]} check port ${ADMIN[b2]}
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" || die "invalid HAProxy configuration"

log "starting upstreams and gateways a1, b1"
start_instance a1
start_instance b1
setsid haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=("$!")
wait_for haproxy_up a1 && wait_for haproxy_up b1 || die "HAProxy never saw a1 and b1 up"
wait_for haproxy_down a2 && wait_for haproxy_down b2 || die "HAProxy never marked the empty slots down"
log "HAProxy on 127.0.0.1:$LB: a1 and b1 in rotation; load for ${DURATION}s"

: >"$WORK/sigterms"
"$PY" "$ROOT/tests/peers/clients/loadgen.py" "http://127.0.0.1:$LB/mcp" --duration "$DURATION" \
    --sigterm-log "$WORK/sigterms" >"$WORK/loadgen.out" 2>"$WORK/loadgen.err" &
LOAD=$!
PIDS+=("$LOAD")

sleep 5
roll a1 a2
sleep 3
roll b1 b2

code=0
wait "$LOAD" || code=$?
cat "$WORK/loadgen.out"
[ -s "$WORK/loadgen.err" ] && sed 's/^/zero-downtime: loadgen: /' "$WORK/loadgen.err" >&2
if [ "$code" -eq 0 ]; then
  log "PASS: no modern request and no legacy call in flight at SIGTERM failed"
else
  log "FAIL (see the summary above)"
fi
exit "$code"
