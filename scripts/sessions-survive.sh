#!/usr/bin/env bash
# Sessions-survive comparison for issue 15 (the sibling of scripts/zero-downtime.sh): three replicas of a
# stateful MCP server (the Python SDK 2.x test server, each behind its own sidecar `lifeline gateway`, as the kit
# deploys it), and two ways in front of them:
#
#   lifeline  two edge `lifeline gateway` replicas (a pool of the three sidecars, each sidecar's /ready read through
#             `ready_port`, sealed session ids from one key file) behind HAProxy `balance roundrobin` with no
#             stickiness;
#   haproxy   HAProxy alone, `stick on` the Mcp-Session-Id header (store-response / match), health-checking each
#             sidecar's /ready, `option redispatch`: the usual sticky-session answer.
#
# For each, a load of N sessions (tests/peers/clients/session_load.py: each opened once, calling a tool back to
# back) runs through two events: `kill -9` of one replica (its server and its sidecar) and, later, a rolling
# restart of all three (each sidecar SIGTERMed, so it drains, then the replica replaced on the same port). The
# lifeline front then goes through a third: a rolling restart of its two edge gateways (each SIGTERMed: HAProxy
# sees its /ready fail and sends new connections to the other; it keeps serving the sessions still sent to it
# until its drain ends). A session loss is an answer telling the client its session is gone (404: it would have
# to re-initialize); failed calls are calls in flight at the kill. Recovered: sessions the edge gateways
# re-initialized on another replica (`lifeline_gateway_session_recoveries_total{result="recovered"}`, summed
# over the edge gateways, during the event). Prints both side by side.
#
#   scripts/sessions-survive.sh         (about two minutes)
#
# Environment: LIFELINE_BIN (default target/debug/lifeline, built if missing), SS_SESSIONS (default 30),
# SS_PHASE (seconds of load around each event, default 4), LIFELINE_PEERS_DIR (see scripts/install-peers.sh),
# SS_KEEP=1 keeps the logs. Everything listens on 127.0.0.1 only; every process started is killed on exit.
# Exit status 0 when the run completed (the figures are the result, not a pass/fail).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SESSIONS="${SS_SESSIONS:-30}"
PHASE="${SS_PHASE:-4}"
NAME=sessions-survive
KEEP="${SS_KEEP:-}"
# shellcheck source=lib/local-procs.sh
source "$ROOT/scripts/lib/local-procs.sh"
start_run lifeline-ss

# --- ports -----------------------------------------------------------------------------------------------------
# Per replica: server, sidecar listener, sidecar admin. Per edge gateway: listener, admin. Two HAProxy frontends.
declare -A UP SIDE SADM UP_PID SIDE_PID EDGE_PID
read -r -a P <<<"$(free_ports 15)"
i=0
for r in r1 r2 r3; do UP[$r]=${P[i]}; SIDE[$r]=${P[i+1]}; SADM[$r]=${P[i+2]}; i=$((i + 3)); done
E1=${P[9]}; E1A=${P[10]}; E2=${P[11]}; E2A=${P[12]}; LB_EDGE=${P[13]}; LB_STICKY=${P[14]}

# --- replicas (server + sidecar) -------------------------------------------------------------------------------
start_replica() {
  local r="$1"
  (cd "$ROOT/tests/peers" && LIFELINE_PEER_MODE=stateful exec setsid "$PY" -m uvicorn --factory py2_server:create_app \
      --host 127.0.0.1 --port "${UP[$r]}" --timeout-graceful-shutdown 2 --log-level warning) \
      >>"$WORK/server-$r.log" 2>&1 &
  UP_PID[$r]=$!; PIDS+=("$!")
  wait_for curl -s -o /dev/null "http://127.0.0.1:${UP[$r]}/debug/sessions" || die "server $r did not start"
  setsid "$BIN" gateway --upstream "http://127.0.0.1:${UP[$r]}/mcp" \
      --listen "127.0.0.1:${SIDE[$r]}" --admin-listen "127.0.0.1:${SADM[$r]}" \
      --drain-delay 1s --drain-timeout 10s --ready-ttl 300ms --allowed-host '*' >>"$WORK/sidecar-$r.log" 2>&1 &
  SIDE_PID[$r]=$!; PIDS+=("$!")
  wait_for ready "${SADM[$r]}" || die "sidecar $r never became ready"
}

kill_replica() {
  local r="$1"
  kill -KILL -- "-${UP_PID[$r]}" 2>/dev/null || true
  kill -KILL -- "-${SIDE_PID[$r]}" 2>/dev/null || true
  wait "${UP_PID[$r]}" "${SIDE_PID[$r]}" 2>/dev/null || true
}

# roll_replica R : SIGTERM the sidecar (it drains: /ready false, new sessions refused, idle sessions ended, in-flight
# requests finished), then the server, then a new replica on the same ports.
roll_replica() {
  local r="$1" i
  kill -TERM "${SIDE_PID[$r]}"
  for i in $(seq 1 300); do kill -0 "${SIDE_PID[$r]}" 2>/dev/null || break; sleep 0.1; done
  kill -TERM -- "-${UP_PID[$r]}" 2>/dev/null || true
  wait "${SIDE_PID[$r]}" "${UP_PID[$r]}" 2>/dev/null || true
  start_replica "$r"
}

# --- the two front ends ----------------------------------------------------------------------------------------
openssl rand -hex 32 >"$WORK/session-keys" 2>/dev/null || "$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$WORK/session-keys"
# The edges' pool: each replica's sidecar, its admin /ready read beside the active probe (`ready_port`, as the kit's
# edge overlay sets it), so a draining sidecar gets no new sessions from the first check after its SIGTERM.
{
  echo "upstreams:"
  for r in r1 r2 r3; do
    echo "  - { url: \"http://127.0.0.1:${SIDE[$r]}/mcp\", ready_port: ${SADM[$r]} }"
  done
} >"$WORK/edge.yaml"
start_edge() {
  local listen="$1" admin="$2" name="$3"
  setsid "$BIN" gateway --config "$WORK/edge.yaml" --drain-delay 1s --drain-timeout 10s \
      --session-key-file "$WORK/session-keys" \
      --upstream-health-interval 1s --upstream-consecutive-errors 2 \
      --listen "127.0.0.1:$listen" --admin-listen "127.0.0.1:$admin" --allowed-host '*' >>"$WORK/edge-$name.log" 2>&1 &
  EDGE_PID[$name]=$!; PIDS+=("$!")
  wait_for ready "$admin" || die "edge gateway $name never became ready"
}

# roll_edge NAME LISTEN ADMIN : SIGTERM the edge gateway (it drains: /ready false, new sessions refused, sealed
# sessions still served until the drain ends), wait for it to exit, start it again on the same ports.
roll_edge() {
  local name="$1" i
  kill -TERM "${EDGE_PID[$name]}"
  for i in $(seq 1 300); do kill -0 "${EDGE_PID[$name]}" 2>/dev/null || break; sleep 0.1; done
  wait "${EDGE_PID[$name]}" 2>/dev/null || true
  start_edge "$2" "$3" "$name"
}

# recovered : sessions the running edge gateways recovered so far (their counters restart with them).
recovered() {
  local a total=0 n
  for a in "$E1A" "$E2A"; do
    n=$(curl -s "http://127.0.0.1:$a/metrics" | awk '/^lifeline_gateway_session_recoveries_total\{result="recovered"\}/ {print int($2)}')
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
frontend edge
  bind 127.0.0.1:$LB_EDGE
  default_backend edge_gateways
backend edge_gateways
  # The lifeline edge tier: no stickiness at all; each edge's /ready on its admin port (false while it drains).
  balance roundrobin
  option httpchk GET /ready
  http-check expect status 200
  default-server inter 300ms fall 2 rise 1
  option redispatch
  retries 2
  retry-on conn-failure empty-response
  server e1 127.0.0.1:$E1 check port $E1A
  server e2 127.0.0.1:$E2 check port $E2A
frontend sticky
  bind 127.0.0.1:$LB_STICKY
  default_backend replicas
backend replicas
  # The baseline: sessions stick to the replica that minted them (the Mcp-Session-Id header).
  balance roundrobin
  option httpchk GET /ready
  http-check expect status 200
  default-server inter 300ms fall 2 rise 1
  stick-table type string len 128 size 100k expire 30m
  stick store-response res.hdr(mcp-session-id)
  stick on req.hdr(mcp-session-id)
  option redispatch
  retries 2
  retry-on conn-failure empty-response
  server r1 127.0.0.1:${SIDE[r1]} check port ${SADM[r1]}
  server r2 127.0.0.1:${SIDE[r2]} check port ${SADM[r2]}
  server r3 127.0.0.1:${SIDE[r3]} check port ${SADM[r3]}
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" || die "invalid HAProxy configuration"

# --- runs ------------------------------------------------------------------------------------------------------
# phase URL NAME EVENT : load for PHASE s, EVENT, load until the event is over plus PHASE s; the load's JSON.
phase() {
  local url="$1" name="$2" event="$3"
  rm -f "$WORK/stop"
  "$PY" "$ROOT/tests/peers/clients/session_load.py" "$url" --sessions "$SESSIONS" --duration 300 \
      --stop "$WORK/stop" >"$WORK/load-$name.json" 2>"$WORK/load-$name.err" &
  local load=$!
  sleep "$PHASE"
  $event
  sleep "$PHASE"
  touch "$WORK/stop"
  wait "$load" || die "the load generator failed: $(tail -3 "$WORK/load-$name.err")"
}
kill_one() { log "  kill -9 of replica r1"; kill_replica r1; }
roll_all() { local r; for r in r1 r2 r3; do log "  rolling $r"; roll_replica "$r"; done; }
roll_edges() { log "  rolling edge e1"; roll_edge e1 "$E1" "$E1A"; log "  rolling edge e2"; roll_edge e2 "$E2" "$E2A"; }

log "starting three replicas (server + sidecar each), two edge gateways and HAProxy"
for r in r1 r2 r3; do start_replica "$r"; done
start_edge "$E1" "$E1A" e1
start_edge "$E2" "$E2A" e2
setsid haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=("$!")
wait_for curl -s -o /dev/null "http://127.0.0.1:$LB_EDGE/" || die "HAProxy did not start"
wait_for ready "$E1A" && wait_for ready "$E2A" || die "the edge gateways are not ready"

for front in lifeline haproxy; do
  if [ "$front" = lifeline ]; then url="http://127.0.0.1:$LB_EDGE/mcp"; else url="http://127.0.0.1:$LB_STICKY/mcp"; fi
  log "$front: $SESSIONS sessions, kill -9 of one replica"
  phase "$url" "$front-kill" kill_one
  if [ "$front" = lifeline ]; then recovered >"$WORK/recovered-$front-kill"; fi
  start_replica r1
  wait_for ready "$E1A" || die "edge e1 not ready"
  log "$front: $SESSIONS sessions, rolling restart of all three replicas"
  phase "$url" "$front-roll" roll_all
  if [ "$front" = lifeline ]; then
    echo $(($(recovered) - $(cat "$WORK/recovered-$front-kill"))) >"$WORK/recovered-$front-roll"
    log "$front: $SESSIONS sessions, rolling restart of both edge gateways"
    phase "$url" "$front-edges" roll_edges
    recovered >"$WORK/recovered-$front-edges"
  fi
done

field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/load-$1.json" "$2"; }
recovered_in() { if [ -f "$WORK/recovered-$1" ]; then cat "$WORK/recovered-$1"; else echo -; fi; }
printf '\n%-46s %-14s %-8s %-14s %-16s %s\n' "front end ($SESSIONS sessions)" "event" "calls" "failed calls" "session losses" "recovered"
for front in lifeline haproxy; do
  label="lifeline edge x2 behind HAProxy round-robin"
  events="kill roll edges"
  if [ "$front" = haproxy ]; then label="HAProxy stick on hdr(mcp-session-id)"; events="kill roll"; fi
  for ev in $events; do
    case "$ev" in kill) event="kill -9" ;; roll) event="rollout" ;; edges) event="edge rollout" ;; esac
    printf '%-46s %-14s %-8s %-14s %-16s %s\n' "$label" "$event" "$(field "$front-$ev" calls)" \
        "$(field "$front-$ev" failed_calls)" "$(field "$front-$ev" session_losses)" "$(recovered_in "$front-$ev")"
  done
done
for f in "$WORK"/load-*.json; do log "$(basename "$f"): $(cat "$f")"; done
