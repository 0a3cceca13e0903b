#!/usr/bin/env bash
# Builds llmhub's Debian packages from this checkout:
#   llmhub_VERSION-1_ARCH.deb                       the server, its systemd unit, config, dashboards,
#                                                   Grafana provisioning, alert rules, manual pages
#   postgresql-15-llm-analytics_VERSION-1_ARCH.deb  the SQL extension for Debian 12's PostgreSQL 15
#   postgresql-17-llm-analytics_VERSION-1_ARCH.deb  ... for Debian 13's PostgreSQL 17 (built against
#                                                   the Debian 13 chroot of scripts/servers.sh)
#
# usage: scripts/package.sh [--debug] [--out DIR] [--only llmhub|pg15|pg17]...
#   --debug  package the debug builds the tests already made (fast; what scripts/package-test.sh
#            installs). Without it everything is built in release mode, as for a release.
#   --out    where the .deb files go (default target/debian)
#
# Needs dpkg-dev (dpkg-shlibdeps computes each package's library dependencies) and, for the
# extension packages, cargo-pgrx initialised as scripts/test.sh does it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

debug=0
out=target/debian
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) debug=1 ;;
    --out) out=$2; shift ;;
    --only) only+=("$2"); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#only[@]} -gt 0 ] || only=(llmhub pg15 pg17)
wants() { case " ${only[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }
command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing: apt-get install dpkg-dev"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"
deb_version="$version-1"
arch=$(dpkg --print-architecture)
maintainer="llmhub developers <llmhub@users.noreply.github.com>"
homepage=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fast gzip for test packages; xz for release ones.
if [ "$debug" = 1 ]; then compress=(-Zgzip -z1); profile_dir=debug; else compress=(-Zxz); profile_dir=release; fi

# Prints the shlibs:Depends of the given ELF files (e.g. "libc6 (>= 2.34), libgcc-s1 (>= 4.2)").
shlib_depends() {
  local d="$work/shlibs"
  rm -rf "$d"; mkdir -p "$d/debian"
  printf 'Source: llmhub\n\nPackage: llmhub\nArchitecture: any\n' >"$d/debian/control"
  local files=()
  for f in "$@"; do files+=("$(realpath "$f")"); done
  (cd "$d" && dpkg-shlibdeps -O "${files[@]}" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

# Writes DEBIAN/md5sums and builds the package from a staged tree.
build_deb() {  # STAGE NAME
  local stage=$1 name=$2
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
  local file="$out/${name}_${deb_version}_${arch}.deb"
  dpkg-deb --root-owner-group "${compress[@]}" --build "$stage" "$file" >/dev/null
  log "built $file ($(du -h "$file" | cut -f1))"
}

installed_size() { du -sk --exclude=DEBIAN "$1" | cut -f1; }

# --- llmhub ------------------------------------------------------------------------------------
if wants llmhub; then
  log "llmhub: cargo build ($profile_dir)"
  if [ "$debug" = 1 ]; then cargo build --locked -p llmhub; else cargo build --locked --release -p llmhub; fi
  bin="target/$profile_dir/llmhub"
  s="$work/llmhub"
  install -d "$s/DEBIAN" "$s/usr/bin" "$s/usr/lib/systemd/system" "$s/etc/llmhub" \
    "$s/usr/share/llmhub/grafana/provisioning/dashboards" "$s/usr/share/llmhub/grafana/provisioning/datasources" \
    "$s/usr/share/llmhub/prometheus" "$s/usr/share/doc/llmhub" "$s/usr/share/man/man1"
  # Debug information stays out of the package (symbols stay: panics still name functions).
  objcopy --strip-debug "$bin" "$s/usr/bin/llmhub"
  chmod 755 "$s/usr/bin/llmhub"
  install -m 644 deploy/debian/llmhub.service "$s/usr/lib/systemd/system/llmhub.service"
  install -m 644 deploy/debian/config.yaml "$s/etc/llmhub/config.yaml"
  # The dashboards as this binary renders them, and Grafana provisioning pointing at them.
  "$s/usr/bin/llmhub" dashboards --out "$s/usr/share/llmhub/dashboards" >/dev/null
  sed 's#^\(\s*path:\).*#\1 /usr/share/llmhub/dashboards#' dashboards/provisioning/dashboards/llmhub.yaml \
    >"$s/usr/share/llmhub/grafana/provisioning/dashboards/llmhub.yaml"
  grep -q 'path: /usr/share/llmhub/dashboards$' "$s/usr/share/llmhub/grafana/provisioning/dashboards/llmhub.yaml" ||
    die "the dashboard provisioning file has no path: line to point at /usr/share/llmhub/dashboards"
  install -m 644 dashboards/provisioning/datasources/llmhub.yaml "$s/usr/share/llmhub/grafana/provisioning/datasources/"
  install -m 644 deploy/prometheus/llmhub-alerts.yml deploy/prometheus/llmhub-alerts.test.yml "$s/usr/share/llmhub/prometheus/"
  install -m 644 README.md docs/*.md "$s/usr/share/doc/llmhub/"
  gzip -9n -c CHANGELOG.md >"$s/usr/share/doc/llmhub/changelog.gz"
  sed "s/@LICENSE@/$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -1)/" deploy/debian/copyright \
    >"$s/usr/share/doc/llmhub/copyright"
  "$s/usr/bin/llmhub" man --out "$work/man"
  for page in "$work/man"/*.1; do gzip -9n -c "$page" >"$s/usr/share/man/man1/$(basename "$page").gz"; done
  install -m 755 deploy/debian/llmhub.postinst "$s/DEBIAN/postinst"
  install -m 755 deploy/debian/llmhub.prerm "$s/DEBIAN/prerm"
  install -m 755 deploy/debian/llmhub.postrm "$s/DEBIAN/postrm"
  echo /etc/llmhub/config.yaml >"$s/DEBIAN/conffiles"
  depends=$(shlib_depends "$s/usr/bin/llmhub")
  [ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies for llmhub"
  cat >"$s/DEBIAN/control" <<EOF
Package: llmhub
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size "$s")
Depends: $depends, passwd
Section: net
Priority: optional
Homepage: $homepage
Description: LLM cost, token and latency analytics from OpenTelemetry GenAI spans
 llmhub receives OTLP traces (gRPC and HTTP) from LLM applications, reads every GenAI
 attribute dialect, prices each model call from an effective-dated catalog and exports
 Prometheus metrics, PostgreSQL/TimescaleDB rows and forwarded spans. The package ships a
 hardened systemd unit, /etc/llmhub/config.yaml, Grafana dashboards and provisioning, and
 Prometheus alert rules under /usr/share/llmhub.
EOF
  build_deb "$s" llmhub
fi

# --- the SQL extension, one package per PostgreSQL major -----------------------------------------
# cargo pgrx package writes the extension's files under the paths pg_config names; for PostgreSQL 17
# those carry the chroot's directory in front (scripts/pg17-config), which is taken off here.
extension_deb() {  # MAJOR PG_CONFIG CHROOT_PREFIX FEATURE_ARGS...
  local major=$1 pg_config=$2 prefix=$3; shift 3
  local name="postgresql-$major-llm-analytics"
  local raw="$work/pgrx-$major" s="$work/$name"
  log "$name: cargo pgrx package ($profile_dir)"
  local flags=()
  [ "$debug" = 1 ] && flags+=(--debug)
  (cd pg-extension && cargo pgrx package "${flags[@]}" --pg-config "$pg_config" --out-dir "$raw" "$@" >&2)
  [ -d "$raw$prefix/usr" ] || die "cargo pgrx package wrote nothing under $raw$prefix/usr"
  install -d "$s/DEBIAN" "$s/usr/share/doc/$name"
  cp -a "$raw$prefix/usr" "$s/"
  local so="$s/usr/lib/postgresql/$major/lib/llm_analytics.so"
  [ -f "$so" ] || die "no llm_analytics.so for PostgreSQL $major"
  objcopy --strip-debug "$so"
  sed "s/@LICENSE@/$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -1)/" deploy/debian/copyright \
    >"$s/usr/share/doc/$name/copyright"
  install -m 644 docs/sql.md "$s/usr/share/doc/$name/"
  local depends
  depends=$(shlib_depends "$so")
  cat >"$s/DEBIAN/control" <<EOF
Package: $name
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size "$s")
Depends: postgresql-$major${depends:+, $depends}
Section: database
Priority: optional
Homepage: $homepage
Description: llm_analytics: LLM cost and latency analytics in SQL for PostgreSQL $major
 The llm_analytics extension owns the llm_calls table that llmhub writes, and adds
 percentile summaries, exact cost from the price catalog, anomalies, forecasts, budgets
 and SLOs, rollups and tenant isolation by row-level security. Works with and without
 TimescaleDB. CREATE EXTENSION llm_analytics; see /usr/share/doc/$name/sql.md.
EOF
  build_deb "$s" "$name"
}

if wants pg15; then extension_deb 15 /usr/bin/pg_config ""; fi
if wants pg17; then
  chroot_dir=${LLMHUB_CHROOT:-/var/lib/llmhub/trixie}
  [ -x "$chroot_dir/usr/lib/postgresql/17/bin/pg_config" ] ||
    die "PostgreSQL 17 is built against the Debian 13 chroot: run scripts/servers.sh setup first"
  extension_deb 17 "$ROOT/scripts/pg17-config" "$chroot_dir" --no-default-features --features pg17
fi
