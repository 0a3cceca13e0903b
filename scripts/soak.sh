#!/usr/bin/env bash
# The kill -9 soak of the fault-injection suite, N rounds on each server (TESTING.md):
# load against `llmhub serve` (WAL queue), kill -9 at a random moment each round, the database
# restarted (fast or immediate) in some rounds; then every acknowledged span must be stored once.
# Prints one line per server: acknowledged / stored / missing / duplicated / dead-lettered.
#
#   scripts/soak.sh [N]            N rounds per server (default 50)
#   LLMHUB_SOAK_SEED=S scripts/soak.sh N   repeat the random choices of an earlier run
#
# Needs what scripts/test.sh sets up (run it once first, or `scripts/servers.sh setup`); root.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
bash scripts/servers.sh start pg15 >/dev/null
bash scripts/servers.sh start timescale >/dev/null
eval "$(bash scripts/servers.sh env)"
started=$(date +%s)
mkdir -p target
log="target/soak-$(date +%Y%m%d-%H%M%S).log"
status=0
LLMHUB_SOAK_CYCLES=$rounds cargo test -q -p llmhub --test faults --locked -- --ignored --exact \
  --nocapture --test-threads 1 kill9::soak_pg15 kill9::soak_timescale >"$log" 2>&1 || status=$?
grep -E '^soak:|test result|panicked' "$log" || true
echo "soak of $rounds rounds per server: $(( $(date +%s) - started )) s; full output in $log"
exit "$status"
