#!/usr/bin/env python3
"""Times the example job (CDN logs NDJSON.gz -> daily report -> snappy parquet)
end to end in pbatch and in DuckDB on the same files, and prints the ratio.

usage: benches/peer_duckdb.py [--rows N] [--runs R] [--pbatch PATH]

pbatch is timed as the whole `pbatch run` process (start-up included); DuckDB
as one COPY statement inside a warm Python process with the same explicit
schema. Peak memory: each pbatch process's max RSS, and DuckDB's in a fresh
Python process running the COPY once, both under GNU time. Needs `pip install duckdb` and a release pbatch binary
(`cargo build --release`).
"""
import os
import statistics
import subprocess
import sys
import time

import bench_util
from bench_util import args_and_data, DUCK_COLUMNS, max_rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = """SELECT CAST(date_trunc('day', ts) AS DATE) AS day, domain, status,
  COUNT(*) AS requests, SUM(bytes) AS bytes FROM logs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


def main():
    a, data = args_and_data("pbatch-peer-")
    import duckdb

    times, pbatch_rss = [], 0
    env = {**os.environ, "PBATCH_ENGINE_TIMEZONE": "Asia/Shanghai"}
    for _ in range(a.runs):
        t0 = time.perf_counter()
        kib = max_rss_kib([a.pbatch, "run", os.path.join(ROOT, "examples/cdn-logs"), "daily_traffic", "--data-dir",
                           data, "--batch-time", "2026-11-25T01:00:00+08:00"], env)
        times.append(time.perf_counter() - t0)
        pbatch_rss = max(pbatch_rss, kib / 1024)
    pbatch_s = statistics.median(times)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = os.path.join(data, "buckets/cdn-logs/logs/*/*.json.gz")
    cols = DUCK_COLUMNS
    out = os.path.join(data, "duck.parquet")
    dtimes = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        con.execute(f"COPY ({QUERY.replace('FROM logs', f'FROM read_json({chr(39)}{glob}{chr(39)}, format={chr(39)}newline_delimited{chr(39)}, columns={cols})')}) "
                    f"TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
        dtimes.append(time.perf_counter() - t0)
    duck_s = statistics.median(dtimes)
    copy = (f"COPY ({QUERY.replace('FROM logs', f'FROM read_json({chr(39)}{glob}{chr(39)}, format={chr(39)}newline_delimited{chr(39)}, columns={cols})')}) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION snappy)")
    code = f"import duckdb; c = duckdb.connect(); c.execute(\"SET TimeZone = 'UTC'\"); c.execute({copy!r})"
    duck_rss = max_rss_kib([sys.executable, "-c", code], env) / 1024

    want = con.execute(f"SELECT count(*), sum(requests) FROM '{out}'").fetchone()
    got = con.execute(f"SELECT count(*), sum(requests) FROM '{data}/buckets/reports/daily_traffic/2026-11-25/part-00000.parquet'").fetchone()
    assert want == got, f"results differ: duckdb {want}, pbatch {got}"
    print(f"rows {a.rows}: {bench_util.timing('pbatch', times)}, peak {pbatch_rss:.0f} MiB")
    print(f"rows {a.rows}: {bench_util.timing('duckdb', dtimes)}, peak {duck_rss:.0f} MiB (a fresh python process)")
    print(f"ratio pbatch / duckdb = {pbatch_s / duck_s:.2f}")


if __name__ == "__main__":
    sys.exit(main())
