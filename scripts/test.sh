#!/usr/bin/env bash
# Runs pbatch's tests. On first use it creates a Python venv holding the
# independent readers the tests check outputs with (pyarrow, DuckDB).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PBATCH_VENV:-$HOME/.cache/pbatch-venv}"
if ! "$VENV/bin/python" -c 'import pyarrow, duckdb, cramjam' 2>/dev/null; then
  echo "creating $VENV with pyarrow and duckdb (the tests' independent readers)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'duckdb==2.0.1' 'cramjam==2.14.0'
fi
export PBATCH_PYTHON="$VENV/bin/python"
# A target dir outside the clone keeps later builds incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pbatch-target}"
exec cargo test --workspace --locked "$@"
