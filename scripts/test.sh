#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs every peer the tests talk to (pinned npm and PyPI packages,
# Debian packages), builds the workspace and runs every test, including the real-peer integration tests and the
# official MCP conformance suite. Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)

echo "==> Installing peers (npm, PyPI, apt)"
scripts/install-peers.sh --apt haproxy nginx-light postgresql chromium prometheus prometheus-alertmanager

echo "==> Checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "==> Building"
cargo build --workspace --all-targets --locked

echo "==> Starting PostgreSQL on loopback for the monitor's storage suite"
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop "$LIFELINE_PG_DIR" || true' EXIT

echo "==> Running tests"
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
cargo test --workspace --doc --locked
cargo nextest run --workspace --locked --profile ci "$@"

echo "==> Test suite finished in $(( $(date +%s) - start )) s"
