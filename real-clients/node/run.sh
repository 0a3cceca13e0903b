#!/usr/bin/env bash
# Install and run the Vercel AI SDK real client.
#
#   run.sh install  [v6|v7]  npm ci into the variant's target dir, skipped when the
#                            lock file's sha256 matches the last successful install
#   run.sh run      [v6|v7]  install, then run vercel_ai.mjs (needs FAKE_PROVIDER_URL
#                            and OTEL_EXPORTER_OTLP_ENDPOINT in the environment)
#   run.sh selftest [v6|v7]  install, start dev_otlp_sink.mjs + dev_fake.mjs on
#                            ephemeral loopback ports, run vercel_ai.mjs against them,
#                            print a span summary
#
# v6 (default): package.json here, AI SDK 6, target dir <repo>/target/real-clients/node
# v7:           v7/package.json,   AI SDK 7 + @ai-sdk/otel, <repo>/target/real-clients/node-v7
# VERCEL_AI_NODE_DIR overrides the target dir.
#
# node_modules never land in the repo: package.json, package-lock.json and the
# .mjs files are copied to the target dir and node runs them from there (ESM
# resolves bare imports relative to the importing file; NODE_PATH is ignored by ESM).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CMD="${1:-run}"
VARIANT="${2:-${VERCEL_AI_VARIANT:-v6}}"
case "$VARIANT" in
  v6) PKG="$HERE"; DIR="${VERCEL_AI_NODE_DIR:-$ROOT/target/real-clients/node}" ;;
  v7) PKG="$HERE/v7"; DIR="${VERCEL_AI_NODE_DIR:-$ROOT/target/real-clients/node-v7}" ;;
  *) echo "unknown variant $VARIANT (v6|v7)" >&2; exit 2 ;;
esac

need_node() {
  command -v node >/dev/null || { echo "node not found" >&2; exit 3; }
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=6)?0:1)' \
    || { echo "node >= 20.6 needed, found $(node --version)" >&2; exit 3; }
}

install() {
  need_node
  mkdir -p "$DIR"
  local want have=""
  want="$(sha256sum "$PKG/package-lock.json" | cut -d' ' -f1)"
  [ -f "$DIR/.lock-sha256" ] && have="$(cat "$DIR/.lock-sha256")"
  if [ "$want" = "$have" ] && [ -d "$DIR/node_modules" ]; then
    return 0
  fi
  cp "$PKG/package.json" "$PKG/package-lock.json" "$DIR/"
  rm -f "$DIR/.lock-sha256"
  # --loglevel=error: AI SDK 7 declares engines node>=22 and npm warns (EBADENGINE) on node 20
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
  local work fake_cmd
  work="$(mktemp -d)"
  # global on purpose: the EXIT trap runs after this function has returned
  SELFTEST_PIDS=""
  trap 'kill $SELFTEST_PIDS 2>/dev/null || true' EXIT
  if [ -f "$HERE/../fake_provider.py" ] && command -v python3 >/dev/null && [ -z "${VERCEL_AI_DEV_FAKE:-}" ]; then
    fake_cmd=(python3 "$HERE/../fake_provider.py" 0)
  else
    fake_cmd=(node "$DIR/dev_fake.mjs" 0)
    # dev_fake.mjs has no Responses API
    export HARNESS_FLOWS="${HARNESS_FLOWS:-openai_chat,openai_reasoning,openai_stream,openai_tool,openai_error,openai_embeddings,anthropic_chat,anthropic_stream,anthropic_tool,anthropic_error}"
  fi
  node "$DIR/dev_otlp_sink.mjs" 0 "$work/spans.ndjson" > "$work/sink.out" & SELFTEST_PIDS="$SELFTEST_PIDS $!"
  FAKE_PROVIDER_LOG="$work/fake.jsonl" "${fake_cmd[@]}" > "$work/fake.out" & SELFTEST_PIDS="$SELFTEST_PIDS $!"
  for _ in $(seq 100); do
    grep -q '^PORT=' "$work/sink.out" 2>/dev/null && grep -q '^PORT=' "$work/fake.out" 2>/dev/null && break
    sleep 0.1
  done
  local sink_port fake_port rc=0
  sink_port="$(sed -n 's/^PORT=//p' "$work/sink.out" | head -1)"
  fake_port="$(sed -n 's/^PORT=//p' "$work/fake.out" | head -1)"
  echo "selftest: fake ${fake_cmd[*]} on $fake_port, sink on $sink_port, files in $work" >&2
  FAKE_PROVIDER_URL="http://127.0.0.1:$fake_port" OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" \
    node "$DIR/vercel_ai.mjs" > "$work/client.out" || rc=$?
  tail -1 "$work/client.out"
  sleep 0.2 # let the sink finish writing the last request
  node "$DIR/summarize_spans.mjs" "$work/spans.ndjson"
  return $rc
}

case "$CMD" in
  install) install ;;
  run) run ;;
  selftest) selftest ;;
  *) echo "usage: $0 install|run|selftest [v6|v7]" >&2; exit 2 ;;
esac
