#!/usr/bin/env bash
# Runs pbatch's tests: `scripts/test.sh [--install] [cargo test args...]`.
#
# On first use it creates a Python venv holding the independent readers the
# tests check outputs with (pyarrow, DuckDB), the OpenSearch emulator of
# the logdb tests, and selenium. The sink tests start real servers from
# Debian's packages (InfluxDB 1.x, PostgreSQL, MariaDB; they run them as
# their system users, so as root), the console test drives Debian's
# chromium through chromium-driver, and one test mounts a tmpfs (root):
# - by default a test whose server (or root) is missing is skipped, and this
#   script names each skipped test with the package to install;
# - `--install` installs the missing packages with apt first (root);
# - in CI (`CI=true`) a missing server is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
install=false
if [ "${1:-}" = "--install" ]; then
  install=true
  shift
fi
ci=false
[ "${CI:-}" = "true" ] && ci=true

VENV="${PBATCH_VENV:-$HOME/.cache/pbatch-venv}"
if ! "$VENV/bin/python" -c 'import pyarrow, duckdb, cramjam, osmem_server, selenium' 2>/dev/null; then
  echo "creating $VENV with pyarrow, duckdb (the tests' independent readers) and selenium" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'duckdb==2.0.1' 'cramjam==2.14.0' 'osmem-server==0.1.6' 'selenium==4.50.0'
fi
export PBATCH_PYTHON="$VENV/bin/python"

# PostgreSQL's binaries: pg_config's, else the newest installed version's.
pg_bin() {
  local d
  d="$(pg_config --bindir 2>/dev/null || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
}

# servers' binaries live in sbin, which a non-root PATH may lack
export PATH="$PATH:/usr/sbin:/sbin"

missing() {
  need=()
  command -v influxd >/dev/null || need+=(influxdb)
  { [ -n "$(pg_bin)" ] && command -v psql >/dev/null; } || need+=(postgresql)
  command -v mariadbd >/dev/null || need+=(mariadb-server)
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
}
missing
if [ ${#need[@]} -gt 0 ] && { $install || $ci; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} (servers the sink tests start, the console test's browser)" >&2
    apt-get install -y --no-install-recommends "${need[@]}" \
      || { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; }
    missing
  else
    echo "installing ${need[*]} needs root and apt-get (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
PBATCH_PG_BIN="$(pg_bin)"
export PBATCH_PG_BIN

# What cannot run here: skipped, each named with its reason (a failure in CI).
skips=()
reasons=()
skip() { # reason, test names...
  local reason="$1"
  shift
  for t in "$@"; do
    skips+=(--skip "$t")
    reasons+=("skipped $t: $reason")
  done
}
root=false
[ "$(id -u)" = 0 ] && root=true
for pkg in "${need[@]}"; do
  case "$pkg" in
    influxdb) skip "needs influxd (apt-get install influxdb)" \
      sinks::tsdb_export_writes_line_protocol_into_influxdb conformance::conformance_tsdb ;;
    postgresql) skip "needs PostgreSQL (apt-get install postgresql)" \
      report::report_export_into_postgresql conformance::conformance_report_postgresql ;;
    mariadb-server) skip "needs MariaDB (apt-get install mariadb-server)" \
      report::report_export_into_mariadb conformance::conformance_report_mariadb ;;
    chromium | chromium-driver) skip "needs a browser (apt-get install chromium chromium-driver)" \
      console::the_console_in_a_real_browser ;;
  esac
done
if ! $root; then
  skip "runs PostgreSQL as user postgres: needs root" \
    report::report_export_into_postgresql conformance::conformance_report_postgresql
  skip "runs MariaDB as user mysql: needs root" \
    report::report_export_into_mariadb conformance::conformance_report_mariadb
  skip "mounts a tmpfs: needs root" crash::a_full_disk_under_staging_fails_the_batch_and_changes_nothing
fi
if [ ${#reasons[@]} -gt 0 ]; then
  printf '%s\n' "${reasons[@]}" | sort -u >&2
  if $ci; then
    echo "CI=true: every test must run" >&2
    exit 1
  fi
fi
# No NameNode can run here: the live HDFS test runs only against one you name.
if [ -z "${PBATCH_TEST_HDFS_URL:-}" ]; then
  echo "note: hdfs::live_hdfs_round_trip is ignored (set PBATCH_TEST_HDFS_URL=hdfs://host:port to run it)" >&2
fi

# cargo's own target dir (./target, or CARGO_TARGET_DIR when set): the
# README's example command has built most of what the tests need there.
status=0
sep=(--)
for a in "$@"; do [ "$a" = "--" ] && sep=(); done
cargo test --workspace --locked "$@" "${sep[@]}" "${skips[@]}" || status=$?
if [ -n "${PBATCH_TEST_HDFS_URL:-}" ] && [ $status = 0 ]; then
  # the live HDFS test, ignored without a NameNode
  cargo test --locked --test it hdfs::live_hdfs_round_trip -- --ignored || status=$?
fi
if [ ${#reasons[@]} -gt 0 ]; then
  echo "skipped (counted as filtered out above):" >&2
  printf '  %s\n' "${reasons[@]}" | sort -u >&2
fi
exit $status
