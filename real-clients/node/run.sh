#!/usr/bin/env bash
# Install and run the Vercel AI SDK real client.
#
#   run.sh install   npm ci into $VERCEL_AI_NODE_DIR (default <repo>/target/real-clients/node),
#                    skipped when the lock file's sha256 matches the last install
#   run.sh run       install, then run vercel_ai.mjs (needs FAKE_PROVIDER_URL and
#                    OTEL_EXPORTER_OTLP_ENDPOINT in the environment)
#   run.sh selftest  install, start dev_otlp_sink.mjs + dev_fake.mjs on ephemeral
#                    loopback ports, run vercel_ai.mjs against them, print a span summary
#
# node_modules never land in the repo: package.json, package-lock.json and the
# .mjs files are copied to the target dir and node runs them from there (ESM
# resolves bare imports relative to the importing file, so NODE_PATH is not used).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${VERCEL_AI_NODE_DIR:-$ROOT/target/real-clients/node}"

need_node() {
  command -v node >/dev/null || { echo "node not found" >&2; exit 3; }
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=6)?0:1)' \
    || { echo "node >= 20.6 needed, found $(node --version)" >&2; exit 3; }
}

install() {
  need_node
  mkdir -p "$DIR"
  local want have=""
  want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
  [ -f "$DIR/.lock-sha256" ] && have="$(cat "$DIR/.lock-sha256")"
  if [ "$want" = "$have" ] && [ -d "$DIR/node_modules" ]; then
    return 0
  fi
  cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
  rm -f "$DIR/.lock-sha256"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$DIR/.lock-sha256"
}

sync_scripts() {
  cp "$HERE"/*.mjs "$DIR/"
}

run() {
  install
  sync_scripts
  : "${FAKE_PROVIDER_URL:?FAKE_PROVIDER_URL must be set}"
  : "${OTEL_EXPORTER_OTLP_ENDPOINT:?OTEL_EXPORTER_OTLP_ENDPOINT must be set}"
  exec node "$DIR/vercel_ai.mjs"
}

selftest() {
  install
  sync_scripts
  local work pids=()
  work="$(mktemp -d)"
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
  node "$DIR/dev_otlp_sink.mjs" 0 "$work/spans.ndjson" > "$work/sink.out" & pids+=($!)
  node "$DIR/dev_fake.mjs" 0 > "$work/fake.out" & pids+=($!)
  for _ in $(seq 50); do
    [ -s "$work/sink.out" ] && [ -s "$work/fake.out" ] && break
    sleep 0.1
  done
  export $(cat "$work/sink.out" "$work/fake.out")
  local rc=0
  node "$DIR/vercel_ai.mjs" || rc=$?
  echo "spans written to $work/spans.ndjson" >&2
  node "$DIR/summarize_spans.mjs" "$work/spans.ndjson"
  return $rc
}

case "${1:-run}" in
  install) install ;;
  run) run ;;
  selftest) selftest ;;
  *) echo "usage: $0 install|run|selftest" >&2; exit 2 ;;
esac
