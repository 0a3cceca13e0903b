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
# For the pgrx extension: PostgreSQL 15 headers, libclang (bindgen), sudo (cargo pgrx test --runas);
# tdigest is the peer the SQL percentile benchmark compares with; dpkg-dev (dpkg-shlibdeps) builds
# the Debian packages.
for p in postgresql-server-dev-15 libclang-dev clang sudo postgresql-15-tdigest dpkg-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
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

# --- real GenAI clients (real-clients/): their Python venvs and npm packages install in the
# background while Rust builds (each is skipped while its lock is unchanged) --------------------
log "real clients: installing locked Python and Node.js packages in the background"
mkdir -p target
python3 real-clients/run.py --install-only --jobs 2 >target/real-clients-install.log 2>&1 &
real_clients_install=$!

# --- the SQL extension (pgrx 0.18.1, its own workspace under pg-extension/) --------------------
if [ "$(cargo pgrx --version 2>/dev/null)" != "cargo-pgrx 0.18.1" ]; then
  log "installing cargo-pgrx 0.18.1 (about 5 minutes on 2 cores)"
  cargo install cargo-pgrx --version 0.18.1 --locked
fi
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -q "^pg15 = " "$pgrx_config" 2>/dev/null || ! grep -qF "pg17 = \"$PWD/scripts/pg17-config\"" "$pgrx_config" 2>/dev/null; then
  log "cargo pgrx init (PostgreSQL 15 from the system, PostgreSQL 17 from the Debian 13 chroot)"
  cargo pgrx init --pg15 /usr/bin/pg_config --pg17 "$PWD/scripts/pg17-config"
fi
log "pg-extension: fmt, clippy, pgrx tests on PostgreSQL 15, install into PostgreSQL 17 + TimescaleDB"
(
  cd pg-extension
  cargo fmt -- --check
  cargo clippy --all-targets --locked --features pg15 -- -D warnings
  # initdb refuses root, so the test server runs as postgres; its data directory's parent must be
  # owned by postgres.
  as_root install -d -o postgres -g postgres /var/lib/llmhub-pgrx
  cargo pgrx test pg15 --runas postgres --pgdata /var/lib/llmhub-pgrx/data
  # Built on the host against the chroot's headers, written into the chroot (its tests run with the
  # workspace's below: collector-processor/tests/sql_timescale.rs).
  cargo pgrx install --pg-config "$PWD/../scripts/pg17-config" --no-default-features --features pg17
)

# --- Rust checks -----------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! wait "$real_clients_install"; then
  cat target/real-clients-install.log
  echo "real clients: installing their packages failed (log above)" >&2
  exit 1
fi

log "cargo test (libraries, binaries and integration tests, including those that need real servers)"
cargo test --workspace --lib --bins --tests --locked -- --include-ignored

log "benchmarks in test mode (each runs once, so they never rot)"
cargo test --workspace --benches --locked

log "fuzzing: every libFuzzer target for ${FUZZ_SECONDS:-15} s from its seed corpus (TESTING.md)"
bash scripts/fuzz.sh

log "Debian packages: built (scripts/package.sh --debug), installed and checked in clean Debian 12 and 13 chroots"
bash scripts/package-test.sh
