#!/usr/bin/env python3
"""Times a scan-heavy query over the same files in pbatch and in DuckDB, for
NDJSON.gz, plain csv (with header) and parquet (snappy), and prints the ratio
pbatch / DuckDB per format.

usage: benches/scan_duckdb.py [--rows N] [--runs R] [--pbatch PATH]

The CDN-log example generator writes the NDJSON.gz files (8 files); DuckDB
rewrites each as csv and as parquet, so both engines read identical files.
The query reads five of the twelve columns and groups by status. pbatch is
timed as the whole `pbatch run` process (start-up included) with the
datasource's declared schema; DuckDB as one query inside a warm Python
process with the same explicit schema. Peak memory: each pbatch process's
max RSS, and DuckDB's in a fresh Python process running the query once. Results are compared. Needs
`pip install duckdb` and a release pbatch binary (`cargo build --release`).
"""
import glob as globmod
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import bench_util
from bench_util import args_and_data, DUCK_COLUMNS, FIELDS, max_rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = ("SELECT status, COUNT(*) AS n, SUM(bytes) AS bytes, MAX(duration_ms) AS slowest, "
         "COUNT(DISTINCT domain) AS domains FROM t WHERE ts IS NOT NULL GROUP BY status ORDER BY status")


def spec_dir(root, fmt, bucket):
    """A pbatch spec folder: datasource t over `bucket`, job scan, json export."""
    d = os.path.join(root, f"spec-{fmt}")
    os.makedirs(os.path.join(d, "datasources"), exist_ok=True)
    os.makedirs(os.path.join(d, "jobs/scan/exports"), exist_ok=True)
    spec = {"bucket": bucket, "keyPrefixes": ["f/"], "fileType": fmt}
    if fmt == "csv":
        spec.update(delimiter=",", containsHeader=True)
    ds = {"region": "nb", "type": "kodo", "spec": spec, "noVerifySchema": True, "workflow": "",
          "schema": [{"key": k, "valtype": v, "required": False} for k, v, _ in FIELDS]}
    json.dump(ds, open(os.path.join(d, "datasources/t.json"), "w"))
    job = {"srcs": [{"name": "t", "type": "datasource", "tableName": "t"}],
           "computation": {"type": "sql", "code": QUERY},
           "scheduler": {"type": "crontab", "spec": {"crontab": "0 0 1 * * *"}}}
    json.dump(job, open(os.path.join(d, "jobs/scan.json"), "w"))
    export = {"type": "kodo", "spec": {"bucket": "scan-out", "keyPrefix": f"{fmt}/$(date)/", "format": "json"}}
    json.dump(export, open(os.path.join(d, "jobs/scan/exports/e.json"), "w"))
    return d


def main():
    a, data = args_and_data("pbatch-scan-")
    import duckdb
    sources = sorted(globmod.glob(os.path.join(data, "buckets/cdn-logs/logs/*/*.json.gz")))
    cols = DUCK_COLUMNS
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # the same rows as json.gz, csv and parquet, one file per source file
    for fmt in ["json", "csv", "parquet"]:
        os.makedirs(os.path.join(data, f"buckets/scan-{fmt}/f"), exist_ok=True)
    for i, src in enumerate(sources):
        shutil.copy(src, os.path.join(data, f"buckets/scan-json/f/part-{i}.json.gz"))
        rel = f"read_json('{src}', format='newline_delimited', columns={cols})"
        con.execute(f"COPY (SELECT * FROM {rel}) TO '{data}/buckets/scan-csv/f/part-{i}.csv' (HEADER, DELIMITER ',')")
        con.execute(f"COPY (SELECT * FROM {rel}) TO '{data}/buckets/scan-parquet/f/part-{i}.parquet' "
                    f"(FORMAT parquet, COMPRESSION snappy)")
    readers = {
        "json": f"read_json('{data}/buckets/scan-json/f/*.json.gz', format='newline_delimited', columns={cols})",
        "csv": f"read_csv('{data}/buckets/scan-csv/f/*.csv', header=true, delim=',', columns={cols})",
        "parquet": f"read_parquet('{data}/buckets/scan-parquet/f/*.parquet')",
    }
    env = {**os.environ, "PBATCH_ENGINE_TIMEZONE": "UTC"}
    for fmt in ["json", "csv", "parquet"]:
        spec = spec_dir(data, fmt, f"scan-{fmt}")
        times, rss = [], 0
        for _ in range(a.runs):
            t0 = time.perf_counter()
            kib = max_rss_kib([a.pbatch, "run", spec, "scan", "--data-dir", data, "--batch-time",
                               "2026-11-25T01:00:00Z"], env)
            times.append(time.perf_counter() - t0)
            rss = max(rss, kib / 1024)
        pbatch_s = statistics.median(times)
        # DuckDB's memory: the same query in a fresh process (its time is taken warm, in this one)
        code = f"import duckdb; c = duckdb.connect(); c.execute(\"SET TimeZone = 'UTC'\"); c.execute({QUERY.replace('FROM t', f'FROM {readers[fmt]}')!r}).fetchall()"
        duck_rss = max_rss_kib([sys.executable, "-c", code], env) / 1024
        dtimes = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            want = con.execute(QUERY.replace("FROM t", f"FROM {readers[fmt]}")).fetchall()
            dtimes.append(time.perf_counter() - t0)
        duck_s = statistics.median(dtimes)
        got_file = os.path.join(data, f"buckets/scan-out/{fmt}/2026-11-25/part-00000.json")
        got = [tuple(json.loads(l)[k] for k in ["status", "n", "bytes", "slowest", "domains"])
               for l in open(got_file)]
        assert sorted(got) == sorted(want), f"{fmt}: results differ: duckdb {want}, pbatch {got}"
        print(f"{fmt:8} rows {a.rows}: {bench_util.timing('pbatch', times)}, {bench_util.timing('duckdb', dtimes)}, "
              f"ratio pbatch / duckdb = {pbatch_s / duck_s:.2f}; peak RSS pbatch {rss:.0f} MiB, "
              f"duckdb {duck_rss:.0f} MiB (a fresh python process)")
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
