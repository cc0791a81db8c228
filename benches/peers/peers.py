#!/usr/bin/env python3
"""pbatch beside DuckDB, Polars and DataFusion-python on the same files.

usage: benches/peers/peers.py [--rows N] [--runs R] [--pbatch PATH] [--data DIR]
                              [--engines pbatch,duckdb,polars,datafusion]
                              [--inputs json,csv,parquet] [--queries q1,...,q5]
                              [--markdown]

The inputs are the CDN-log example's access logs (`pbatch example cdn-logs`,
seeded, so every run reads the same rows) in 8 files, written three ways:
newline-delimited JSON .gz, csv with a header, snappy parquet; plus a small
`domains` dimension table. Every engine reads them with the same explicit
12-column schema. Five queries (QUERIES below): a GROUP BY, a top-k, a COUNT
DISTINCT per hour, a join with the dimension table plus a p95, and a filter
returning every column. Each result is written as snappy parquet into a fresh
folder.

pbatch is timed as one `pbatch run` process per job, so its numbers include
process start; a peer is timed inside one warm Python process that runs the
job R times. Peak RSS is the whole process's (GNU time): pbatch's largest over
its runs, the peer's process over all of its runs. The table gives medians of
R, the fastest peer per cell, pbatch / fastest and pbatch's RSS / that peer's.

Every engine's result is read back with DuckDB and compared with DuckDB's own
(row count, and per column a sum: numbers, epoch seconds, string hashes; the
approximate p95 within 5%); a mismatch is printed and the script exits 1.

Generated data is kept in --data (default /tmp/pbatch-peers-<rows>) and
reused. Needs `pip install duckdb polars datafusion==55.* pyarrow` and a
release pbatch (`cargo build --release`).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from bench_util import DUCK_COLUMNS, FIELDS, max_rss_kib  # noqa: E402

FILES = 8
INPUTS = ["json", "csv", "parquet"]
ENGINES = ["pbatch", "duckdb", "polars", "datafusion"]
PEERS = ["duckdb", "polars", "datafusion"]
GLOBS = {"json": "logs/*/*.json.gz", "csv": "csv/*.csv", "parquet": "parquet/*.parquet"}
# every pbatch run of a job is the same batch, so it overwrites one folder
BATCH_TIME = "2026-11-25T00:00:00Z"
PREFIXES = {"json": "logs/", "csv": "csv/", "parquet": "parquet/"}

# The SQL every SQL engine runs (DuckDB spells the p95 its own way).
QUERIES = {
    "q1": "SELECT domain, status, COUNT(*) AS requests, SUM(bytes) AS bytes FROM logs "
          "GROUP BY domain, status ORDER BY domain, status",
    "q2": "SELECT ts, domain, client_ip, url_path, bytes, duration_ms FROM logs "
          "ORDER BY bytes DESC, duration_ms DESC, ts DESC LIMIT 100",
    "q3": "SELECT date_trunc('hour', ts) AS hour, COUNT(DISTINCT client_ip) AS visitors FROM logs "
          "GROUP BY date_trunc('hour', ts) ORDER BY hour",
    "q4": "SELECT d.owner, COUNT(*) AS requests, P95 AS p95 FROM logs l JOIN domains d ON l.domain = d.domain "
          "GROUP BY d.owner ORDER BY d.owner",
    "q5": "SELECT * FROM logs WHERE status = 500 AND bytes < 20000",
}
P95 = {"pbatch": "approx_percentile_cont(l.duration_ms, 0.95)", "datafusion": "approx_percentile_cont(l.duration_ms, 0.95)",
       "duckdb": "approx_quantile(l.duration_ms, 0.95)"}
# columns compared with a tolerance (approximate aggregates)
APPROX = {"p95": 0.05}


def sql(engine, q):
    return QUERIES[q].replace("P95", P95.get(engine, ""))


def domains():
    """The dimension table: the 4 domains the logs use, and 60 they don't."""
    real = ["img.example.com", "video.example.com", "static.example.com", "dl.example.com"]
    rows = [(d, f"team-{i % 2}", "gold" if i < 2 else "silver") for i, d in enumerate(real)]
    rows += [(f"cdn{i}.example.net", f"team-{2 + i % 5}", "bronze") for i in range(60)]
    return rows


# ---------------------------------------------------------------- data

def make_data(a):
    """Generates the logs once per --data dir, then csv and parquet copies."""
    bucket = os.path.join(a.data, "buckets", "cdn-logs")
    done = os.path.join(a.data, ".complete")
    if os.path.exists(done):
        return bucket
    shutil.rmtree(a.data, ignore_errors=True)
    os.makedirs(a.data)
    subprocess.run([a.pbatch, "example", "cdn-logs", "--rows", str(a.rows), "--files", str(FILES), "--data-dir", a.data],
                   check=True, stdout=subprocess.DEVNULL)
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = sorted(subprocess.run(["find", os.path.join(bucket, "logs"), "-name", "*.json.gz"], check=True,
                                  capture_output=True, text=True).stdout.split())
    for d in ("csv", "parquet", "dim"):
        os.makedirs(os.path.join(bucket, d), exist_ok=True)
    cols = ", ".join(f"strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts" if k == "ts" else k for k, _, _ in FIELDS)
    for i, f in enumerate(files):
        src = f"read_json('{f}', format='newline_delimited', columns={DUCK_COLUMNS})"
        con.execute(f"COPY (SELECT {cols} FROM {src}) TO '{bucket}/csv/part-{i:05}.csv' (HEADER)")
        con.execute(f"COPY (SELECT * FROM {src}) TO '{bucket}/parquet/part-{i:05}.parquet' "
                    "(FORMAT parquet, COMPRESSION snappy)")
    with open(os.path.join(bucket, "dim", "domains.csv"), "w") as out:
        out.write("domain,owner,tier\n")
        out.writelines(f"{d},{o},{t}\n" for d, o, t in domains())
    open(done, "w").close()
    return bucket


def write_specs(spec):
    """A spec folder with a datasource per input and a job per (input, query)."""
    shutil.rmtree(spec, ignore_errors=True)
    os.makedirs(os.path.join(spec, "datasources"))
    schema = [{"key": k, "valtype": v, "required": False} for k, v, _ in FIELDS]
    for fmt in INPUTS:
        s = {"bucket": "cdn-logs", "keyPrefixes": [PREFIXES[fmt]], "fileType": fmt}
        if fmt == "csv":
            s.update({"delimiter": ",", "containsHeader": True})
        write_json(os.path.join(spec, "datasources", f"logs_{fmt}.json"),
                   {"region": "nb", "type": "kodo", "spec": s, "schema": schema, "noVerifySchema": True})
    write_json(os.path.join(spec, "datasources", "domains.json"), {
        "region": "nb", "type": "kodo", "noVerifySchema": True,
        "spec": {"bucket": "cdn-logs", "keyPrefixes": ["dim/"], "fileType": "csv", "delimiter": ",",
                 "containsHeader": True},
        "schema": [{"key": k, "valtype": "string", "required": True} for k in ("domain", "owner", "tier")]})
    for fmt in INPUTS:
        for q in QUERIES:
            job = f"{fmt}_{q}"
            srcs = [{"name": f"logs_{fmt}", "type": "datasource", "tableName": "logs"}]
            if q == "q4":
                srcs.append({"name": "domains", "type": "datasource", "tableName": "domains"})
            write_json(os.path.join(spec, "jobs", f"{job}.json"), {
                "srcs": srcs, "computation": {"type": "sql", "code": sql("pbatch", q)},
                "container": {"type": "2U4G", "count": 1}, "scheduler": {"type": "manual"}})
            write_json(os.path.join(spec, "jobs", job, "exports", "out.json"), {
                "type": "kodo", "spec": {"bucket": "bench-out", "keyPrefix": f"{job}/", "format": "parquet",
                                         "compression": "snappy", "fileCount": 1, "saveMode": "overwrite",
                                         "retention": 0}})


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


# ---------------------------------------------------------------- peers (worker side)

def worker(a):
    """Runs one (engine, input, query) R times in this process; prints the times as JSON."""
    engine, fmt, q = a.worker
    bucket = os.path.join(a.data, "buckets", "cdn-logs")
    run = {"duckdb": duckdb_job, "polars": polars_job, "datafusion": datafusion_job}[engine](bucket, fmt, q)
    times = []
    for i in range(a.runs):
        out = os.path.join(a.out, f"run{i}")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        t0 = time.perf_counter()
        run(os.path.join(out, "part-0.parquet"))
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def duckdb_job(bucket, fmt, q):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = f"{bucket}/{GLOBS[fmt]}"
    src = {"json": f"read_json('{glob}', format='newline_delimited', columns={DUCK_COLUMNS})",
           "csv": f"read_csv('{glob}', header=true, columns={DUCK_COLUMNS})",
           "parquet": f"read_parquet('{glob}')"}[fmt]
    con.execute(f"CREATE VIEW logs AS SELECT * FROM {src}")
    con.execute(f"CREATE VIEW domains AS SELECT * FROM read_csv('{bucket}/dim/domains.csv', header=true, "
                "columns={'domain':'VARCHAR','owner':'VARCHAR','tier':'VARCHAR'})")
    query = sql("duckdb", q)
    return lambda out: con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION snappy)")


def datafusion_job(bucket, fmt, q):
    import datafusion
    import pyarrow as pa
    # the json files are in a folder per day
    ctx = datafusion.SessionContext(
        datafusion.SessionConfig().set("datafusion.execution.listing_table_ignore_subdirectory", "false"))
    types = {"date": pa.timestamp("us", tz="UTC"), "string": pa.string(), "long": pa.int64()}
    schema = pa.schema([(k, types[v]) for k, v, _ in FIELDS])
    if fmt == "json":
        ctx.register_json("logs", f"{bucket}/logs/", schema=schema, file_extension=".json.gz",
                          file_compression_type="gzip")
    elif fmt == "csv":
        ctx.register_csv("logs", f"{bucket}/csv/", schema=schema, has_header=True)
    else:
        ctx.register_parquet("logs", f"{bucket}/parquet/")
    ctx.register_csv("domains", f"{bucket}/dim/domains.csv",
                     schema=pa.schema([("domain", pa.string()), ("owner", pa.string()), ("tier", pa.string())]))
    query = sql("datafusion", q)
    return lambda out: ctx.sql(query).write_parquet(out, compression="snappy")


def polars_job(bucket, fmt, q):
    import polars as pl
    types = {"date": pl.String, "string": pl.String, "long": pl.Int64}
    schema = {k: types[v] for k, v, _ in FIELDS}

    def logs():
        if fmt == "json":
            lf = pl.scan_ndjson(f"{bucket}/{GLOBS[fmt]}", schema=schema)
        elif fmt == "csv":
            lf = pl.scan_csv(f"{bucket}/{GLOBS[fmt]}", schema=schema)
        else:
            return pl.scan_parquet(f"{bucket}/{GLOBS[fmt]}")
        return lf.with_columns(pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC"))

    c = pl.col

    def plan():
        lf = logs()
        if q == "q1":
            return (lf.group_by("domain", "status").agg(pl.len().alias("requests"), c("bytes").sum())
                    .sort("domain", "status"))
        if q == "q2":
            return (lf.select("ts", "domain", "client_ip", "url_path", "bytes", "duration_ms")
                    .sort(["bytes", "duration_ms", "ts"], descending=True).head(100))
        if q == "q3":
            return (lf.group_by(c("ts").dt.truncate("1h").alias("hour")).agg(c("client_ip").n_unique()
                                                                                .alias("visitors")).sort("hour"))
        if q == "q4":
            dims = pl.scan_csv(f"{bucket}/dim/domains.csv")
            return (lf.join(dims, on="domain").group_by("owner")
                    .agg(pl.len().alias("requests"), c("duration_ms").quantile(0.95).alias("p95")).sort("owner"))
        return lf.filter((c("status") == 500) & (c("bytes") < 20000))

    return lambda out: plan().sink_parquet(out, compression="snappy")


# ---------------------------------------------------------------- timing (driver side)

def run_pbatch(a, spec, fmt, q):
    """Times R `pbatch run` processes; returns (times, peak RSS MiB, output glob)."""
    job = f"{fmt}_{q}"
    env = {**os.environ, "PBATCH_ENGINE_TIMEZONE": "UTC"}
    times, rss = [], 0
    for _ in range(a.runs):
        t0 = time.perf_counter()
        kib = max_rss_kib([a.pbatch, "run", spec, job, "--data-dir", a.data, "--quiet",
                           "--batch-time", BATCH_TIME], env)
        times.append(time.perf_counter() - t0)
        rss = max(rss, kib / 1024)
    return times, rss, os.path.join(a.data, "buckets", "bench-out", job, "*", "*.parquet")


def run_peer(a, engine, fmt, q):
    """Runs the peer's job R times in one fresh process; returns (times, peak RSS MiB, output glob)."""
    out = os.path.join(a.data, "peers", engine, f"{fmt}_{q}")
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, __file__, "--worker", engine, fmt, q, "--runs", str(a.runs),
           "--data", a.data, "--out", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{engine} {fmt} {q} failed:\n{p.stderr[-3000:]}")
    times = json.loads(p.stdout.strip().splitlines()[-1])
    kib = int(p.stderr.strip().splitlines()[-1])
    return times, kib / 1024, os.path.join(out, f"run{a.runs - 1}", "*.parquet")


def checksum(con, glob):
    """(rows, {column: sum}) of a result, read back with DuckDB."""
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}')")
    parts = ["COUNT(*)"]
    for name, typ in zip(rel.columns, rel.types):
        t, col = str(typ).upper(), f'"{name}"'
        if "TIMESTAMP" in t or t == "DATE":
            parts.append(f"SUM(epoch({col}))")
        elif any(x in t for x in ("INT", "DOUBLE", "FLOAT", "DECIMAL")):
            parts.append(f"SUM({col}::DOUBLE)")
        else:
            parts.append(f"SUM(hash({col}::VARCHAR)::HUGEINT)::DOUBLE")
    row = con.sql(f"SELECT {', '.join(parts)} FROM read_parquet('{glob}')").fetchall()[0]
    return row[0], dict(zip(rel.columns, row[1:]))


def agree(got, want):
    if got[0] != want[0] or set(got[1]) != set(want[1]):
        return False
    for k, w in want[1].items():
        g, tol = got[1][k], APPROX.get(k, 1e-9)
        if w is None or g is None:
            if w != g:
                return False
        elif abs(g - w) > tol * max(abs(w), 1.0):
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--pbatch", default=os.path.join(target, "release", "pbatch"))
    ap.add_argument("--data")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--inputs", default=",".join(INPUTS))
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.data = a.data or f"/tmp/pbatch-peers-{a.rows}"
    if a.worker:
        return worker(a)

    import duckdb
    engines = a.engines.split(",")
    make_data(a)
    spec = os.path.join(a.data, "spec")
    write_specs(spec)
    con = duckdb.connect()
    rows, bad = [], 0
    for fmt in a.inputs.split(","):
        for q in a.queries.split(","):
            cell = {}
            for engine in engines:
                res = run_pbatch(a, spec, fmt, q) if engine == "pbatch" else run_peer(a, engine, fmt, q)
                cell[engine] = (statistics.median(res[0]), res[1], checksum(con, res[2]))
                print(f"  {fmt} {q} {engine}: {cell[engine][0]:.2f} s ({cell[engine][1]:.0f} MiB) runs "
                      + ", ".join(f"{t:.2f}" for t in res[0]), file=sys.stderr, flush=True)
            ref = cell.get("duckdb")
            for engine, (_, _, got) in cell.items():
                if ref and not agree(got, ref[2]):
                    bad += 1
                    print(f"MISMATCH {fmt} {q} {engine}: {got} vs duckdb {ref[2]}", file=sys.stderr)
            rows.append((fmt, q, cell))
    print_table(rows, a)
    if bad:
        raise SystemExit(f"{bad} results differ from DuckDB's")


def print_table(rows, a):
    head = ["input", "query", "fastest peer", "pbatch", "pbatch / fastest", "RSS ratio"]
    lines, ratios = [], []
    for fmt, q, cell in rows:
        peers = {e: v for e, v in cell.items() if e in PEERS}
        if not peers or "pbatch" not in cell:
            continue
        best = min(peers, key=lambda e: peers[e][0])
        (bt, brss, _), (pt, prss, _) = peers[best], cell["pbatch"]
        ratios.append(pt / bt)
        lines.append([fmt, q, f"{best} {bt:.2f} ({brss:.0f})", f"{pt:.2f} ({prss:.0f})", f"{pt / bt:.2f}",
                      f"{prss / brss:.2f}"])
    print(f"{a.rows:,} rows, {FILES} files, median of {a.runs}; seconds (peak RSS MiB)")
    if a.markdown:
        print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *lines)]
        for line in [head, *lines]:
            print("  ".join(x.ljust(w) for x, w in zip(line, widths)))
    if ratios:
        print(f"cells: {sum(r <= 0.8 for r in ratios)} at <= 0.8x, {sum(0.8 < r <= 1.0 for r in ratios)} in (0.8, 1.0], "
              f"{sum(1.0 < r <= 1.2 for r in ratios)} in (1.0, 1.2], {sum(r > 1.2 for r in ratios)} above 1.2x")


if __name__ == "__main__":
    main()
