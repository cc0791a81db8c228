#!/usr/bin/env bash
# Runs pbatch's tests. On first use it creates a Python venv holding the
# independent readers the tests check outputs with (pyarrow, DuckDB) and the
# OpenSearch emulator of the logdb tests, and installs InfluxDB, PostgreSQL
# and MariaDB (apt) for the sink tests.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PBATCH_VENV:-$HOME/.cache/pbatch-venv}"
if ! "$VENV/bin/python" -c 'import pyarrow, duckdb, cramjam, osmem_server' 2>/dev/null; then
  echo "creating $VENV with pyarrow and duckdb (the tests' independent readers)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'duckdb==2.0.1' 'cramjam==2.14.0' 'osmem-server==0.1.6'
fi
export PBATCH_PYTHON="$VENV/bin/python"
# Servers of the sink tests, from Debian's packages (the tests start their own
# instances on loopback): InfluxDB 1.x, PostgreSQL, MariaDB.
need=()
command -v influxd >/dev/null || need+=(influxdb)
{ [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v psql >/dev/null; } || need+=(postgresql)
command -v mariadbd >/dev/null || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} (servers the sink tests start)" >&2
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
  else
    echo "the sink tests need Debian packages ${need[*]}: install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
# No NameNode can run here: the live HDFS test runs only against one you name.
if [ -z "${PBATCH_TEST_HDFS_URL:-}" ]; then
  echo "note: hdfs::live_hdfs_round_trip is ignored (set PBATCH_TEST_HDFS_URL=hdfs://host:port to run it)" >&2
fi
# cargo's own target dir (./target, or CARGO_TARGET_DIR when set): the
# README's example command has built most of what the tests need there.
if [ -n "${PBATCH_TEST_HDFS_URL:-}" ]; then
  # the whole suite, then the live HDFS test that is ignored without a NameNode
  cargo test --workspace --locked "$@"
  exec cargo test --locked --test it hdfs::live_hdfs_round_trip -- --ignored
fi
exec cargo test --workspace --locked "$@"
