#!/usr/bin/env bash
# The real-client suite (real-clients/, collector-processor/tests/real_clients.rs): real GenAI
# instrumentation packages from PyPI and npm against a fake provider, every call checked exactly
# in tokens and cost through /metrics and PostgreSQL.
#
#   scripts/real-clients.sh            the locked versions (real-clients/locks/, node/package-lock.json)
#   scripts/real-clients.sh --latest   the newest releases of the Python packages (separate venvs):
#                                      prints locked vs latest versions, then the same checks, so a
#                                      rename upstream is found by this command, not by a bill
#
# Needs what scripts/test.sh sets up (PostgreSQL 15 via scripts/servers.sh); Python 3, Node.js >= 20.6.
set -euo pipefail
cd "$(dirname "$0")/.."
latest=()
case "${1:-}" in
  --latest) latest=(env LLMHUB_REAL_CLIENTS_LATEST=1) ;;
  "") ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
bash scripts/servers.sh start pg15 >/dev/null
eval "$(bash scripts/servers.sh env)"
"${latest[@]}" cargo test -p llmhub --test real_clients --locked -- --ignored --nocapture
