#!/usr/bin/env bash
# libFuzzer (cargo fuzz) over llmhub's input parsers: OTLP protobuf and JSON decode + normalize,
# configuration, price catalog and the SQL summary format. Each target runs for FUZZ_SECONDS
# (default 15) from its seed corpus (fuzz/seeds, the dialect fixtures, the built-in catalog);
# a crash, a panic or a leak fails the script and leaves the input under fuzz/artifacts/.
#
#   scripts/fuzz.sh                    # every target, 15 s each (what scripts/test.sh runs)
#   FUZZ_SECONDS=600 scripts/fuzz.sh otlp_protobuf
#
# The machine has one (stable) toolchain: cargo fuzz builds with RUSTC_BOOTSTRAP=1 and without a
# sanitizer (`-s none`); the fuzzer still instruments for coverage and catches panics and aborts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-15}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(otlp_protobuf otlp_json config catalog summary)
fi
seeds_of() {
  case "$1" in
    otlp_protobuf) echo fuzz/seeds/otlp_protobuf ;;
    otlp_json) echo collector-processor/testdata/dialects ;;
    config) echo fuzz/seeds/config ;;
    catalog) echo prices ;;
    summary) echo fuzz/seeds/summary ;;
  esac
}
mkdir -p target
for t in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$t"
  log="target/fuzz-$t.log"
  mkdir -p "$corpus"
  echo "== fuzz $t: ${secs}s"
  if ! cargo fuzz run -s none "$t" "$corpus" "$(seeds_of "$t")" -- \
      -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz $t failed: the input is under fuzz/artifacts/$t (full log $log)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$log" || true
done
