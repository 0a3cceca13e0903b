#!/usr/bin/env bash
# npm ci of the pinned coding-agent CLIs (Claude Code, Gemini CLI, Codex CLI; package-lock.json here) into
# <repo>/target/real-clients/coding-agents, skipped while the lock's sha256 matches the last
# successful install. Prints the directory holding node_modules/.bin.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${CODING_AGENTS_DIR:-$ROOT/target/real-clients/coding-agents}"
command -v npm >/dev/null || { echo "npm not found" >&2; exit 3; }
mkdir -p "$DIR"
want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
have=""
[ -f "$DIR/.lock-sha256" ] && have="$(cat "$DIR/.lock-sha256")"
if [ "$want" != "$have" ] || [ ! -x "$DIR/node_modules/.bin/claude" ] || [ ! -x "$DIR/node_modules/.bin/codex" ] || [ ! -x "$DIR/node_modules/.bin/gemini" ]; then
  cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
  rm -f "$DIR/.lock-sha256"
  # --loglevel=error: Claude Code declares engines node>=22 and npm warns on node 20 (it runs a
  # native binary, so the Node version does not matter).
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$DIR/.lock-sha256"
fi
echo "$DIR"
