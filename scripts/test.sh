#!/usr/bin/env bash
# Runs every llmhub test on a fresh Debian 12 machine (the README's test command).
#
# Installs what is missing (idempotent: present tools are skipped), then checks formatting and lints,
# builds every target (benchmarks included, so they never rot) and runs all tests, including those
# that need real servers: Prometheus (scraping), PostgreSQL 15 and PostgreSQL 17 + TimescaleDB
# (started by scripts/servers.sh and stopped when this script exits).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --- system packages -------------------------------------------------------------------------
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present (prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'))"
fi

# --- real servers: PostgreSQL 15, PostgreSQL 17 + TimescaleDB (Debian 13 chroot), metrics backends
log "servers: setup (skips what is present) and start"
bash scripts/servers.sh setup
bash scripts/servers.sh start all
eval "$(bash scripts/servers.sh env)"
trap 'bash scripts/servers.sh stop all >/dev/null 2>&1 || true' EXIT

# --- Rust checks -----------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (libraries, binaries and integration tests, including those that need real servers)"
cargo test --workspace --lib --bins --tests --locked -- --include-ignored

log "benchmarks in test mode (each runs once, so they never rot)"
cargo test --workspace --benches --locked
