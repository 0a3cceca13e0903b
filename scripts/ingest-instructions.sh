#!/usr/bin/env bash
# Instructions per span of the ingest path, counted by callgrind (repeatable whatever else the
# machine is doing): prost decode (issue 7's baseline), llmhub's borrowing decoder alone, and
# decode + the GenAI processor, on the same 512-span realistic requests. See
# collector-processor/examples/ingest_instructions.rs.
#
#   bash scripts/ingest-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --locked -p llmhub --example ingest_instructions >&2
bin=target/release/examples/ingest_instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fns=(measure_prost measure_wire measure_ingest)
declare -A ir
for f in "${fns[@]}"; do
  # One run per function: callgrind counts only while inside it.
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect="*::$f" \
    --callgrind-out-file="$out/$f.out" "$bin" >"$out/stdout" 2>"$out/stderr" || {
    cat "$out/stderr" >&2
    exit 1
  }
  ir[$f]=$(awk '/^totals:/ {print $2}' "$out/$f.out")
done
spans=$(grep -o '[0-9]*$' "$out/stdout")
printf '%-16s %14s %10s\n' function instructions per_span
for f in "${fns[@]}"; do
  printf '%-16s %14d %10d\n' "$f" "${ir[$f]}" $((ir[$f] / spans))
done
awk -v p="${ir[measure_prost]}" -v g="${ir[measure_ingest]}" -v w="${ir[measure_wire]}" -v n="$spans" 'BEGIN {
  printf "processing after the borrowing decode: %.0f instructions per span\n", (g - w) / n
  printf "prost decode / ingest, in instructions: %.3f (the rate ratio at equal instructions per cycle)\n", p / g
}'
