#!/usr/bin/env bash
# Installs, starts and stops the real servers llmhub's tests need (Debian 12 host, run as root).
#
#   scripts/servers.sh setup              host packages + Debian 13 chroot (skips what is present)
#   scripts/servers.sh start SERVER|all   start (no-op if running) and wait until it accepts connections
#   scripts/servers.sh stop  SERVER|all   fast shutdown (idempotent); unmounts what start mounted
#   scripts/servers.sh crash pg15|timescale  immediate shutdown (crash recovery at the next start)
#   scripts/servers.sh env                export lines for tests: eval "$(scripts/servers.sh env)"
#
# SERVER: pg15       throwaway PostgreSQL 15 cluster on the host (not the system cluster)
#         timescale  PostgreSQL 17 + TimescaleDB (Apache edition) from the trixie chroot
#         prom-otlp  OTLP/HTTP metrics receiver with a Prometheus query API: VictoriaMetrics from the
#                    chroot (Debian builds Prometheus 2.53 and 3.5 with the OTLP receiver patched out)
#                    OTLP: POST $LLMHUB_TEST_OTLP_METRICS_ENDPOINT; PromQL: $LLMHUB_TEST_PROM_OTLP_URL/api/v1/query
#         prometheus real Prometheus 2.53 from the chroot (remote-write receiver, no scrape targets)
#
# Fault tests stop a database while clients are connected and start it again (each takes ~1 s;
# stop uses fast mode, which disconnects clients; data dirs are kept, so data survives):
#   "$LLMHUB_SERVERS" stop pg15;      sleep 30; "$LLMHUB_SERVERS" start pg15
#   "$LLMHUB_SERVERS" stop timescale; sleep 30; "$LLMHUB_SERVERS" start timescale
# pg15 without this script (the commands it runs):
#   runuser -u postgres -- "$LLMHUB_PG15_BIN/pg_ctl" -D "$LLMHUB_PG15_DIR" -m fast -w stop
#   runuser -u postgres -- "$LLMHUB_PG15_BIN/pg_ctl" -D "$LLMHUB_PG15_DIR" -w -l "$LLMHUB_PG15_DIR/server.log" start
set -euo pipefail

CHROOT=${LLMHUB_CHROOT:-/var/lib/llmhub/trixie}
STAMP=$CHROOT/.llmhub-setup-done     # holds CHROOT_PKGS once they are installed
CHROOT_PKGS="postgresql-17 postgresql-17-timescaledb postgresql-server-dev-17 prometheus victoria-metrics"
PG15_BIN=/usr/lib/postgresql/15/bin
PG15_DIR=${LLMHUB_PG15_DIR:-/tmp/llmhub-pg15}
PG15_PORT=${LLMHUB_PG15_PORT:-55415}
PG17_BIN=/usr/lib/postgresql/17/bin  # inside the chroot
TS_DIR=/var/lib/llmhub-pg17          # inside the chroot
TS_PORT=${LLMHUB_TS_PORT:-55417}
OTLP_PORT=${LLMHUB_PROM_OTLP_PORT:-59090}
PROM_PORT=${LLMHUB_PROM_PORT:-59091}
DB=llmhub_test
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'servers.sh: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# --- setup -------------------------------------------------------------------------------------
setup_host() {
  local missing=() p
  for p in postgresql-15 debootstrap openssl sudo curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing host packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Unmounts everything mounted below the chroot (deepest first).
unmount_chroot() {
  local m
  findmnt -rn -o TARGET | { grep -F "$CHROOT/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
}

umount_setup() {
  local m
  for m in dev proc; do if mountpoint -q "$CHROOT/$m"; then umount -l "$CHROOT/$m"; fi; done
}

setup_chroot() {
  [ "$(cat "$STAMP" 2>/dev/null)" = "$CHROOT_PKGS" ] && return
  if [ ! -f "$STAMP" ]; then
    unmount_chroot
    if [ -e "$CHROOT" ]; then  # an interrupted earlier attempt: start over
      log "removing incomplete chroot $CHROOT"
      rm -rf --one-file-system "$CHROOT"
    fi
    log "debootstrap trixie into $CHROOT"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase trixie "$CHROOT" http://deb.debian.org/debian >/dev/null
    # Maintainer scripts must not start daemons, and no default "17 main" cluster is wanted.
    printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
    chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
    mkdir -p "$CHROOT/etc/postgresql-common"
    echo 'create_main_cluster = false' >"$CHROOT/etc/postgresql-common/createcluster.conf"
  fi
  # /proc and /dev only while packages install; unmounted even on failure or interrupt.
  trap umount_setup EXIT
  trap 'exit 1' INT TERM
  mount --bind /proc "$CHROOT/proc"
  mount --bind /dev "$CHROOT/dev"
  log "installing in the chroot: $CHROOT_PKGS"
  chroot "$CHROOT" apt-get update -qq
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $CHROOT_PKGS 2>&1 >/dev/null | { grep -v 'Is /dev/pts mounted\|runlevel\|policy-rc.d\|FQDN\|make-ssl-cert\|hostname' || true; }
  chroot "$CHROOT" apt-get clean
  umount_setup
  trap - EXIT INT TERM
  echo "$CHROOT_PKGS" >"$STAMP"
}

# --- helpers -----------------------------------------------------------------------------------
need_chroot() { [ -f "$STAMP" ] || die "chroot missing: run '$0 setup' first"; }

# Waits until a PostgreSQL server answers on 127.0.0.1:$1.
wait_pg() {
  for _ in $(seq 600); do
    "$PG15_BIN/pg_isready" -q -U postgres -h 127.0.0.1 -p "$1" && return
    sleep 0.1
  done
  die "PostgreSQL on port $1 not ready after 60 s"
}

# Runs SQL on 127.0.0.1:$1 in database $2 (psql 15 works against both servers).
sql() { "$PG15_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -tA -c "$3"; }

create_db() {
  [ "$(sql "$1" postgres "SELECT 1 FROM pg_database WHERE datname = '$DB'")" = 1 ] ||
    sql "$1" postgres "CREATE DATABASE $DB"
}

# Appends the test server settings to a fresh cluster's postgresql.conf: FILE PORT [EXTRA...]
configure_pg() {
  local file=$1 port=$2
  shift 2
  printf '%s\n' "# llmhub test server" "listen_addresses = '127.0.0.1'" "port = $port" \
    "unix_socket_directories = '/tmp'" "max_connections = 100" "fsync = on" "$@" >>"$file"
}

# --- pg15 --------------------------------------------------------------------------------------
pg15_ctl() { runuser -u postgres -- "$PG15_BIN/pg_ctl" -D "$PG15_DIR" "$@"; }

# TLS for the sink's tests: a test CA, a server certificate for localhost/127.0.0.1, a client
# certificate for role llmhub_cert (`cert` auth), and role llmhub_pw (password over TLS only).
pg15_tls() {
  local d=$PG15_DIR/tls
  if [ ! -s "$d/client.key" ]; then
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=llmhub test CA" \
      -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
      -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=llmhub_cert" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
    openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
      -extfile "$d/client.ext" -out "$d/client.crt" 2>/dev/null
    chown -R postgres:postgres "$d"
    chmod 600 "$d"/*.key
  fi
  if ! grep -q "^ssl = on" "$PG15_DIR/postgresql.conf"; then
    printf '%s\n' "ssl = on" "ssl_cert_file = '$d/server.crt'" "ssl_key_file = '$d/server.key'" \
      "ssl_ca_file = '$d/ca.crt'" "password_encryption = 'scram-sha-256'" >>"$PG15_DIR/postgresql.conf"
  fi
  if ! grep -q "llmhub_cert" "$PG15_DIR/pg_hba.conf"; then
    { printf '%s\n' "hostssl all llmhub_cert 127.0.0.1/32 cert" "hostssl all llmhub_pw 127.0.0.1/32 scram-sha-256" \
        "host all llmhub_cert,llmhub_pw 127.0.0.1/32 reject"; cat "$PG15_DIR/pg_hba.conf"; } >"$PG15_DIR/pg_hba.new"
    mv "$PG15_DIR/pg_hba.new" "$PG15_DIR/pg_hba.conf"
    chown postgres:postgres "$PG15_DIR/pg_hba.conf"
    ! pg15_ctl status >/dev/null || pg15_ctl reload >/dev/null
  fi
}

# True when the server of data directory $1 (as the host sees it) is running a binary that has since
# been replaced on disk: a package upgrade under a running server, whose new libraries it then
# fails to load ("undefined symbol"). Such a server is restarted on the installed binary.
binary_replaced() {
  local pid
  pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *" (deleted)" ]]
}

start_pg15() {
  if [ ! -s "$PG15_DIR/PG_VERSION" ]; then
    rm -rf "$PG15_DIR"
    install -d -o postgres -g postgres -m 700 "$PG15_DIR"
    runuser -u postgres -- "$PG15_BIN/initdb" -A trust -U postgres -E UTF8 --locale=C.UTF-8 -D "$PG15_DIR" >/dev/null
    configure_pg "$PG15_DIR/postgresql.conf" "$PG15_PORT"
  fi
  pg15_tls
  if binary_replaced "$PG15_DIR"; then
    echo "pg15: its binary was upgraded while it ran; restarting"
    pg15_ctl -m fast -w -t 60 stop >/dev/null
  fi
  pg15_ctl status >/dev/null || pg15_ctl -w -t 60 -l "$PG15_DIR/server.log" start >/dev/null
  wait_pg "$PG15_PORT"
  create_db "$PG15_PORT"
  sql "$PG15_PORT" "$DB" "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llmhub_cert') THEN CREATE ROLE llmhub_cert LOGIN; END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'llmhub_pw') THEN CREATE ROLE llmhub_pw LOGIN PASSWORD 'llmhub-test-password'; END IF;
    END \$\$; GRANT CREATE ON DATABASE $DB TO llmhub_cert, llmhub_pw"
  echo "pg15 ready on 127.0.0.1:$PG15_PORT"
}

crash_pg15() {
  if [ -s "$PG15_DIR/PG_VERSION" ] && pg15_ctl status >/dev/null; then pg15_ctl -m immediate -w -t 60 stop >/dev/null; fi
  echo "pg15 crashed (immediate shutdown)"
}

stop_pg15() {
  if [ -s "$PG15_DIR/PG_VERSION" ] && pg15_ctl status >/dev/null; then pg15_ctl -m fast -w -t 60 stop >/dev/null; fi
  echo "pg15 stopped"
}

# --- timescale ---------------------------------------------------------------------------------
# Runs a command inside the chroot as its postgres user.
ts_pg() {
  chroot --userspec="$(stat -c %u:%g "$CHROOT/var/lib/postgresql")" "$CHROOT" \
    env HOME=/var/lib/postgresql LC_ALL=C.UTF-8 "$@"
}

start_timescale() {
  need_chroot
  # PostgreSQL needs no /proc or /dev mounts in the chroot (debootstrap made the /dev nodes);
  # a tmpfs on /dev/shm keeps its POSIX shared memory in RAM instead of the chroot's disk.
  mountpoint -q "$CHROOT/dev/shm" || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$CHROOT/dev/shm"
  if [ ! -s "$CHROOT$TS_DIR/PG_VERSION" ]; then
    rm -rf "${CHROOT:?}$TS_DIR"
    install -d -m 700 -o "$(stat -c %u "$CHROOT/var/lib/postgresql")" \
      -g "$(stat -c %g "$CHROOT/var/lib/postgresql")" "$CHROOT$TS_DIR"
    ts_pg "$PG17_BIN/initdb" -A trust -U postgres -E UTF8 --locale=C.UTF-8 -D "$TS_DIR" >/dev/null
    configure_pg "$CHROOT$TS_DIR/postgresql.conf" "$TS_PORT" \
      "shared_preload_libraries = 'timescaledb'" "timescaledb.telemetry_level = off"
  fi
  if binary_replaced "$CHROOT$TS_DIR"; then
    echo "timescale: its binary was upgraded while it ran; restarting"
    ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" -m fast -w -t 60 stop >/dev/null
  fi
  ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" status >/dev/null ||
    ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" -w -t 60 -l "$TS_DIR/server.log" start >/dev/null
  wait_pg "$TS_PORT"
  create_db "$TS_PORT"
  sql "$TS_PORT" "$DB" 'SET client_min_messages = error; CREATE EXTENSION IF NOT EXISTS timescaledb'
  echo "timescale ready on 127.0.0.1:$TS_PORT"
}

crash_timescale() {
  if [ -s "$CHROOT$TS_DIR/PG_VERSION" ] && ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" status >/dev/null; then
    ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" -m immediate -w -t 60 stop >/dev/null
  fi
  echo "timescale crashed (immediate shutdown)"
}

stop_timescale() {
  if [ -s "$CHROOT$TS_DIR/PG_VERSION" ] && ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" status >/dev/null; then
    ts_pg "$PG17_BIN/pg_ctl" -D "$TS_DIR" -m fast -w -t 60 stop >/dev/null
  fi
  if mountpoint -q "$CHROOT/dev/shm"; then umount "$CHROOT/dev/shm"; fi
  echo "timescale stopped"
}

# --- background servers from the chroot (files in the chroot's /tmp/llmhub-NAME) ---------------
bg_pid() {  # NAME BINARY: prints the pid if that server runs, else fails
  local pid
  pid=$(cat "$CHROOT/tmp/llmhub-$1/server.pid" 2>/dev/null) || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$CHROOT$2" ] && echo "$pid"
}

bg_start() {  # NAME PORT READY_PATH BINARY ARGS...
  local name=$1 port=$2 ready=$3 dir=$CHROOT/tmp/llmhub-$1
  shift 3
  need_chroot
  if ! bg_pid "$name" "$1" >/dev/null; then
    mkdir -p "$dir/data"
    setsid chroot "$CHROOT" "$@" </dev/null >"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
  fi
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$port$ready" && { echo "$name ready on 127.0.0.1:$port"; return; }
    bg_pid "$name" "$1" >/dev/null || die "$name exited: see $dir/server.log"
    sleep 0.1
  done
  die "$name not ready after 60 s: see $dir/server.log"
}

bg_stop() {  # NAME BINARY
  local pid
  if pid=$(bg_pid "$1" "$2"); then
    kill "$pid"
    # bg_pid fails once the process exits (a zombie no longer has an exe link).
    for _ in $(seq 300); do bg_pid "$1" "$2" >/dev/null || break; sleep 0.1; done
    if bg_pid "$1" "$2" >/dev/null; then kill -9 "$pid"; fi
  fi
  rm -f "$CHROOT/tmp/llmhub-$1/server.pid"
  echo "$1 stopped"
}

# VictoriaMetrics: Prometheus-style names for OTLP metrics (e.g. *_seconds_total), and queries
# see samples at once (no 30 s latency offset, no result cache).
start_otlp() {
  bg_start prom-otlp "$OTLP_PORT" /health /usr/bin/victoria-metrics \
    -httpListenAddr="127.0.0.1:$OTLP_PORT" -storageDataPath=/tmp/llmhub-prom-otlp/data \
    -opentelemetry.usePrometheusNaming -search.latencyOffset=1ms -search.disableCache
}
stop_otlp() { bg_stop prom-otlp /usr/bin/victoria-metrics; }

start_prometheus() {
  local dir=/tmp/llmhub-prometheus
  mkdir -p "$CHROOT$dir"
  # No scrape targets: data arrives by remote write. Out-of-order window for pushed samples.
  printf '%s\n' 'global: {scrape_interval: 15s}' 'storage: {tsdb: {out_of_order_time_window: 30m}}' \
    >"$CHROOT$dir/prometheus.yml"
  bg_start prometheus "$PROM_PORT" /-/ready /usr/bin/prometheus --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver
}
stop_prometheus() { bg_stop prometheus /usr/bin/prometheus; }

# --- main --------------------------------------------------------------------------------------
each() {  # start|stop SERVER
  case "$2" in
    pg15) "$1_pg15" ;;
    timescale) "$1_timescale" ;;
    prom-otlp) "$1_otlp" ;;
    prometheus) "$1_prometheus" ;;
    all) "$1_pg15"; "$1_timescale"; "$1_otlp"; "$1_prometheus" ;;
    *) die "unknown server '$2' (pg15|timescale|prom-otlp|prometheus|all)" ;;
  esac
}

case "${1:-}" in
  setup) need_root; setup_host; setup_chroot; log "setup complete" ;;
  start | stop) [ $# -eq 2 ] || die "usage: $0 $1 pg15|timescale|prom-otlp|prometheus|all"; need_root; each "$1" "$2" ;;
  crash)
    [ $# -eq 2 ] || die "usage: $0 crash pg15|timescale"; need_root
    case "$2" in pg15) crash_pg15 ;; timescale) crash_timescale ;; *) die "crash: pg15 or timescale, got '$2'" ;; esac ;;
  env)
    printf 'export %s=%q\n' \
      LLMHUB_TEST_PG15_URL "postgres://postgres@127.0.0.1:$PG15_PORT/$DB" \
      LLMHUB_TEST_TIMESCALE_URL "postgres://postgres@127.0.0.1:$TS_PORT/$DB" \
      LLMHUB_TEST_PROM_OTLP_URL "http://127.0.0.1:$OTLP_PORT" \
      LLMHUB_TEST_OTLP_METRICS_ENDPOINT "http://127.0.0.1:$OTLP_PORT/opentelemetry/v1/metrics" \
      LLMHUB_TEST_PROMETHEUS_URL "http://127.0.0.1:$PROM_PORT" \
      LLMHUB_SERVERS "$SELF" LLMHUB_CHROOT "$CHROOT" \
      LLMHUB_PG15_BIN "$PG15_BIN" LLMHUB_PG15_DIR "$PG15_DIR" LLMHUB_PG15_PORT "$PG15_PORT" \
      LLMHUB_PG17_BIN "$PG17_BIN" LLMHUB_TS_DIR "$TS_DIR" LLMHUB_TS_HOST_DIR "$CHROOT$TS_DIR" \
      LLMHUB_TS_PORT "$TS_PORT"
    ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
