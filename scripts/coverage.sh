#!/usr/bin/env bash
# Line, region and function coverage of every workspace crate under the whole test suite
# (TESTING.md, "Coverage"). Not part of scripts/test.sh: the instrumented build and run take
# about half an hour on 2 cores.
#
# usage: scripts/coverage.sh [--no-run]
#   Installs what is missing (rustup's llvm-tools, cargo-llvm-cov), starts the test servers like
#   scripts/test.sh, runs every test of the workspace (ignored ones included) instrumented, and
#   prints one row per crate; target/coverage/ gets the per-file JSON summary and an lcov file.
#   --no-run  only report from the last run's profiles.
#
# Branch coverage needs a nightly compiler (-Z coverage-options=branch); this project builds
# with stable Rust, so regions (each straight-line piece of code, both sides of every `if`,
# `match` arm and `?`) stand in for branches.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' || {
  log "rustup component add llvm-tools"
  rustup component add llvm-tools
}
if [ "$(cargo llvm-cov --version 2>/dev/null | awk '{print $2}')" != "0.9.1" ]; then
  log "installing cargo-llvm-cov 0.9.1"
  cargo install cargo-llvm-cov --version 0.9.1 --locked
fi

out=target/coverage
mkdir -p "$out"
if [ "${1:-}" != "--no-run" ]; then
  bash scripts/servers.sh setup
  bash scripts/servers.sh start all
  eval "$(bash scripts/servers.sh env)"
  trap 'bash scripts/servers.sh stop all >/dev/null 2>&1 || true' EXIT
  cargo llvm-cov clean --workspace
  # Every test the README's test command runs except the benchmarks and the fuzz targets; a
  # failing test fails this script too (its figures would not describe the suite).
  cargo llvm-cov --workspace --lib --bins --tests --locked --no-report -- --include-ignored
fi
cargo llvm-cov report --json --summary-only --output-path "$out/summary.json"
cargo llvm-cov report --lcov --output-path "$out/lcov.info"
python3 - "$out/summary.json" <<'EOF'
import json, os, sys
from collections import defaultdict

data = json.load(open(sys.argv[1]))["data"][0]["files"]
root = os.getcwd() + "/"
totals = defaultdict(lambda: defaultdict(lambda: [0, 0]))
for f in data:
    path = f["filename"].replace(root, "")
    if path.startswith("/") or "/tests/" in path or "/benches/" in path:
        continue  # dependencies and the test code itself
    parts = path.split("/")
    crate = parts[1] if parts[0] == "crates" else parts[0]
    for kind in ("lines", "regions", "functions"):
        s = f["summary"][kind]
        totals[crate][kind][0] += s["covered"]
        totals[crate][kind][1] += s["count"]
print("| crate | lines | regions | functions |")
print("|---|---|---|---|")
for crate in sorted(totals):
    cells = []
    for kind in ("lines", "regions", "functions"):
        c, n = totals[crate][kind]
        cells.append(f"{100 * c / n:.1f}% ({c}/{n})" if n else "-")
    print(f"| {crate} | " + " | ".join(cells) + " |")
EOF
