#!/usr/bin/env bash
# Installs llmhub's Debian packages (scripts/package.sh --debug) into clean Debian 12 and Debian 13
# chroots and checks what an operator relies on (TESTING.md, "Packages"):
#   - apt installs them from the .deb files alone, pulling their dependencies from Debian;
#   - systemd-analyze verify accepts the unit, and its security exposure stays low;
#   - the packaged config is the built-in defaults; its commented postgres section, uncommented,
#     is valid and is what the service then runs;
#   - the service's ExecStart, run as its User, answers /readyz and stores a span in the
#     chroot's PostgreSQL through the packaged extension (with TimescaleDB on Debian 13), its cost
#     equal to the extension's own llm_cost() for the same tokens, its queue in the state directory;
#   - dpkg -i over itself keeps the edited config and the rows; dpkg -r keeps config and queue;
#     dpkg -P removes the config and keeps the queue.
#
# usage: [LLMHUB_PACKAGE_RELEASE=1] scripts/package-test.sh [bookworm|trixie]...
#   (default: both suites, debug builds; needs root and network)
# Each suite's debootstrap base and apt downloads are kept under $LLMHUB_PKGTEST_DIR
# (default /var/lib/llmhub/pkgtest); every run installs into a fresh overlay over that base.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "package-test.sh: must run as root (debootstrap, chroot, mount)" >&2; exit 1; }

DIR=${LLMHUB_PKGTEST_DIR:-/var/lib/llmhub/pkgtest}
DEBS=$PWD/target/debian-test
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'package-test.sh [%s]: FAILED: %s\n' "${suite:-}" "$*" >&2; exit 1; }
expect_eq() {  # WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected [$2], got [$3]"
}

rm -rf "$DEBS"
# The test command packages the debug builds it already made; LLMHUB_PACKAGE_RELEASE=1 tests the
# release packages a user builds (a release compile of llmhub and of the extension first).
build=(--debug)
[ "${LLMHUB_PACKAGE_RELEASE:-0}" = 1 ] && build=()
bash scripts/package.sh "${build[@]}" --out "$DEBS" 2> >(grep -E '^==>|error|warning' >&2)

# A minbase debootstrap of SUITE, made once and kept (stamped when complete).
base_of() {
  local suite=$1 base="$DIR/$1-base"
  if [ ! -f "$base/.llmhub-base-done" ]; then
    rm -rf --one-file-system "$base"
    mkdir -p "$DIR"
    log "debootstrap $suite (once)"
    debootstrap --variant=minbase "$suite" "$base" http://deb.debian.org/debian >/dev/null
    # No service starts inside the chroot (packages' postinst scripts ask invoke-rc.d), and no
    # PostgreSQL cluster is made at install: the test makes its own.
    printf '#!/bin/sh\nexit 101\n' >"$base/usr/sbin/policy-rc.d"
    chmod 755 "$base/usr/sbin/policy-rc.d"
    mkdir -p "$base/etc/postgresql-common"
    echo 'create_main_cluster = false' >"$base/etc/postgresql-common/createcluster.conf"
    echo 'Acquire::Retries "3";' >"$base/etc/apt/apt.conf.d/80retries"
    touch "$base/.llmhub-base-done"
  fi
  echo "$base"
}

root=""
pg_pid_file=""
cleanup() {
  [ -n "$root" ] || return 0
  if [ -n "${llmhub_pid:-}" ]; then kill -9 "$llmhub_pid" 2>/dev/null || true; fi
  if [ -n "$pg_pid_file" ] && [ -f "$root/$pg_pid_file" ]; then
    kill -9 "$(head -1 "$root/$pg_pid_file")" 2>/dev/null || true
  fi
  findmnt -rn -o TARGET | { grep -F "$root/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
  if mountpoint -q "$root"; then umount -l "$root"; fi
  root=""
}
trap cleanup EXIT

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_postgres() { chroot --userspec=postgres:postgres "$root" env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql LANG=C.UTF-8 "$@"; }

test_suite() {  # SUITE PG_MAJOR PG_PORT EXTRA_PACKAGES...
  suite=$1
  local major=$2 port=$3; shift 3
  local extra=("$@")
  local base run
  base=$(base_of "$suite")
  run="$DIR/run-$suite"
  # A fresh root: an overlay over the untouched base.
  if [ -d "$run/root" ]; then
    findmnt -rn -o TARGET | { grep -F "$run/root" || true; } | sort -r | while read -r m; do umount -l "$m"; done
  fi
  rm -rf --one-file-system "$run"
  mkdir -p "$run/upper" "$run/work" "$run/root" "$DIR/$suite-apt/partial"
  root="$run/root"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root"
  mount --bind /proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount --bind "$DIR/$suite-apt" "$root/var/cache/apt/archives"
  mkdir -p "$root/tmp/debs"
  cp "$DEBS/llmhub_"*.deb "$DEBS/postgresql-$major-llm-analytics_"*.deb "$root/tmp/debs/"

  log "[$suite] apt-get install the packages (+ systemd and man-db for systemd-analyze${extra[*]:+, ${extra[*]}})"
  in_root apt-get update -qq
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    /tmp/debs/llmhub_*.deb "/tmp/debs/postgresql-$major-llm-analytics_"*.deb systemd man-db "${extra[@]}" \
    >"$run/apt.log" 2>&1 || { tail -30 "$run/apt.log"; fail "apt-get install"; }
  expect_eq "llmhub status" "install ok installed" "$(in_root dpkg-query -W -f='${Status}' llmhub)"
  expect_eq "extension status" "install ok installed" "$(in_root dpkg-query -W -f='${Status}' "postgresql-$major-llm-analytics")"
  local pw
  pw=$(in_root getent passwd llmhub) || fail "no llmhub user"
  expect_eq "llmhub user's home and shell" "/var/lib/llmhub:/usr/sbin/nologin" "$(echo "$pw" | cut -d: -f6,7)"
  [ "$(echo "$pw" | cut -d: -f3)" -lt 1000 ] || fail "llmhub is not a system user: $pw"

  log "[$suite] systemd-analyze verify and security"
  local unit=/usr/lib/systemd/system/llmhub.service verify
  verify=$(in_root systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
  expect_eq "systemd-analyze verify output" "" "$verify"
  local exposure
  exposure=$(in_root systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for llmhub.service: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
  awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure level $exposure is above 2.0"
  log "[$suite] exposure level $exposure"

  log "[$suite] the packaged config is the built-in defaults"
  : >"$root/tmp/empty.yaml"
  expect_eq "effective packaged config" \
    "$(in_root llmhub check-config /tmp/empty.yaml | tail -n +2)" \
    "$(in_root llmhub check-config /etc/llmhub/config.yaml | tail -n +2)"

  log "[$suite] PostgreSQL $major on :$port with the packaged extension"
  local pgbin=/usr/lib/postgresql/$major/bin preload=""
  [[ " ${extra[*]} " == *timescaledb* ]] && preload="-c shared_preload_libraries=timescaledb"
  as_postgres "$pgbin/initdb" -D /var/lib/postgresql/pkgtest -U postgres -A trust >"$run/initdb.log" 2>&1 ||
    { cat "$run/initdb.log"; fail "initdb"; }
  pg_pid_file=/var/lib/postgresql/pkgtest/postmaster.pid
  as_postgres "$pgbin/pg_ctl" -D /var/lib/postgresql/pkgtest -l /var/lib/postgresql/pkgtest.log -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 $preload" start >/dev/null ||
    { cat "$root/var/lib/postgresql/pkgtest.log"; fail "PostgreSQL did not start"; }
  psql() { as_postgres "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
  if [ -n "$preload" ]; then psql "CREATE EXTENSION timescaledb" >/dev/null; fi
  psql "CREATE EXTENSION llm_analytics" >/dev/null
  expect_eq "extension version" "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
    "$(psql "SELECT extversion FROM pg_extension WHERE extname = 'llm_analytics'")"
  if [ -n "$preload" ]; then
    expect_eq "llm_calls is a hypertable" "1" \
      "$(psql "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'llm_calls'")"
  fi

  log "[$suite] the unit's ExecStart as its User, with the config's postgres section uncommented"
  # What an operator does: uncomment the example, point it at the database, move the ports.
  local cfg="$root/etc/llmhub/config.yaml"
  sed -i -e 's/^  # postgres:/  postgres:/' -e 's/^  #   \(url\|password_file\|queue\|  directory\|  durability\)/    \1/' \
    -e 's/^        # - postgres/        - postgres/' \
    -e "s#url: postgres://.*#url: postgres://postgres@127.0.0.1:$port/postgres#" -e '/password_file:/d' \
    -e 's/:4317$/:24417/' -e 's/:4318$/:24418/' -e 's/:9464$/:24464/' "$cfg"
  in_root llmhub check-config /etc/llmhub/config.yaml >"$run/check-config.txt" 2>&1 ||
    { cat "$run/check-config.txt"; fail "the uncommented postgres example is not valid"; }
  grep -q '^      directory: /var/lib/llmhub/queue$' "$run/check-config.txt" || fail "queue.directory not in effect: $(cat "$run/check-config.txt")"
  local exec_start user state
  exec_start=$(sed -n 's/^ExecStart=//p' "$root$unit")
  user=$(sed -n 's/^User=//p' "$root$unit")
  state=$(sed -n 's/^StateDirectory=//p' "$root$unit")
  expect_eq "unit user" llmhub "$user"
  # What systemd does for StateDirectory= and WorkingDirectory=.
  in_root install -d -o "$user" -g "$user" -m 0750 "/var/lib/$state"
  # shellcheck disable=SC2086
  chroot --userspec="$user:$user" "$root" env -i PATH=/usr/bin:/bin sh -c "cd /var/lib/$state && umask 0027 && exec $exec_start" \
    >"$run/llmhub.log" 2>&1 &
  llmhub_pid=$!
  local code="" i
  for i in $(seq 1 150); do
    code=$(curl -s -o "$run/readyz" -w '%{http_code}' http://127.0.0.1:24464/readyz || true)
    [ "$code" = 200 ] && break
    kill -0 "$llmhub_pid" 2>/dev/null || { cat "$run/llmhub.log"; fail "llmhub exited"; }
    sleep 0.2
  done
  [ "$code" = 200 ] || { cat "$run/llmhub.log"; fail "/readyz answered $code"; }
  expect_eq "/readyz body" "ready" "$(cat "$run/readyz")"

  # The README's span: 1000 input tokens of which 800 cache reads, 250 output tokens.
  local t_ns=$(( ($(date +%s) - 60) * 1000000000 ))
  code=$(curl -s -o "$run/export" -w '%{http_code}' http://127.0.0.1:24418/v1/traces -H 'content-type: application/json' -d '{"resourceSpans":[{
    "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"pkgtest"}}]},
    "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
    "name":"chat gpt-4o","startTimeUnixNano":"'"$t_ns"'","endTimeUnixNano":"'"$((t_ns + 1500000000))"'",
    "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
      {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
      {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
      {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1000"}},
      {"key":"gen_ai.usage.cache_read.input_tokens","value":{"intValue":"800"}},
      {"key":"gen_ai.usage.output_tokens","value":{"intValue":"250"}}]}]}]}]}')
  expect_eq "export status" 200 "$code"
  local rows=0
  for i in $(seq 1 100); do
    rows=$(psql "SELECT count(*) FROM llm_calls")
    [ "$rows" = 1 ] && break
    sleep 0.1
  done
  expect_eq "rows stored" 1 "$rows"
  expect_eq "stored tokens" "200|800|250" \
    "$(psql "SELECT input_uncached_tokens, cache_read_tokens, output_tokens FROM llm_calls")"
  local cost
  cost=$(psql "SELECT cost_usd FROM llm_calls")
  [ -n "$cost" ] || fail "the stored call has no cost"
  expect_eq "cost equals the extension's llm_cost()" "t" \
    "$(psql "SELECT cost_usd = llm_cost('openai', 'gpt-4o', time, input_uncached => 200, cache_read => 800, output => 250) FROM llm_calls")"
  curl -s http://127.0.0.1:24464/metrics >"$run/metrics"
  grep -q '^llmhub_tokens_total{.*llmhub_token_bucket="cache_read".*} 800$' "$run/metrics" || fail "no cache_read 800 in /metrics"
  expect_eq "the queue lives in the state directory, owned by the service" "llmhub" \
    "$(in_root stat -c %U /var/lib/llmhub/queue)"
  kill -TERM "$llmhub_pid"
  local rc=0
  wait "$llmhub_pid" || rc=$?
  llmhub_pid=""
  expect_eq "llmhub exit status after SIGTERM" 0 "$rc"

  log "[$suite] dpkg -i over itself"
  in_root dpkg -i /tmp/debs/llmhub_*.deb "/tmp/debs/postgresql-$major-llm-analytics_"*.deb >"$run/dpkg-i.log" 2>&1 ||
    { cat "$run/dpkg-i.log"; fail "dpkg -i over the installed packages"; }
  grep -q ':24464$' "$cfg" || fail "reinstalling replaced the edited config"
  expect_eq "rows after reinstall (new session)" 1 "$(psql "SELECT count(*) FROM llm_calls")"
  expect_eq "llm_cost after reinstall" "t" \
    "$(psql "SELECT cost_usd = llm_cost('openai', 'gpt-4o', time, input_uncached => 200, cache_read => 800, output => 250) FROM llm_calls")"

  log "[$suite] dpkg -r, then dpkg -P"
  as_postgres "$pgbin/pg_ctl" -D /var/lib/postgresql/pkgtest -w -m fast stop >/dev/null
  in_root dpkg -r llmhub "postgresql-$major-llm-analytics" >"$run/dpkg-r.log" 2>&1 || { cat "$run/dpkg-r.log"; fail "dpkg -r"; }
  [ ! -e "$root/usr/bin/llmhub" ] || fail "dpkg -r left /usr/bin/llmhub"
  [ ! -e "$root/usr/lib/postgresql/$major/lib/llm_analytics.so" ] || fail "dpkg -r left llm_analytics.so"
  [ ! -e "$root/usr/lib/systemd/system/llmhub.service" ] || fail "dpkg -r left the unit"
  expect_eq "llmhub status after remove" "deinstall ok config-files" "$(in_root dpkg-query -W -f='${Status}' llmhub)"
  grep -q ':24464$' "$cfg" || fail "dpkg -r removed or replaced the config"
  [ -d "$root/var/lib/llmhub/queue" ] || fail "dpkg -r removed the queue"
  in_root dpkg -P llmhub >"$run/dpkg-p.log" 2>&1 || { cat "$run/dpkg-p.log"; fail "dpkg -P"; }
  [ ! -e "$cfg" ] || fail "dpkg -P left the config"
  [ -d "$root/var/lib/llmhub/queue" ] || fail "dpkg -P removed the queue"
  grep -q "/var/lib/llmhub is kept" "$run/dpkg-p.log" || fail "dpkg -P did not say the queue is kept"
  expect_eq "llmhub status after purge" "" "$(in_root dpkg-query -W -f='${Status}' llmhub 2>/dev/null || true)"
  pg_pid_file=""
  cleanup
  rm -rf --one-file-system "$run"  # kept when a check fails, for its logs
  log "[$suite] packages passed"
}

for s in "${suites[@]}"; do
  case "$s" in
    bookworm) test_suite bookworm 15 25415 ;;
    trixie) test_suite trixie 17 25417 postgresql-17-timescaledb ;;
    *) echo "package-test.sh: unknown suite $s (bookworm or trixie)" >&2; exit 2 ;;
  esac
done
echo "package-test.sh: ${suites[*]}: all checks passed"
