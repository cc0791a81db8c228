#!/usr/bin/env python3
"""Reads pbatch output files with independent readers and prints one
canonical JSON object per row (sorted keys), for the fixture harness.

usage: read_output.py FORMAT [--header] [--delim D] FILE...

parquet and orc are read by pyarrow; csv and json by DuckDB; text line by line.
"""
import datetime
import decimal
import json
import sys


def canon(v):
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    return v


def rows(fmt, path, header, delim):
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path).to_pylist()
    if fmt == "orc":
        import pyarrow.orc as orc
        return orc.read_table(path).to_pylist()
    if fmt == "csv":
        import duckdb
        rel = duckdb.read_csv(path, header=header, sep=delim)
        cols = rel.columns
        return [dict(zip(cols, r)) for r in rel.fetchall()]
    if fmt == "json":
        import duckdb
        rel = duckdb.sql(f"SELECT * FROM read_json_auto('{path}', format='newline_delimited')")
        cols = rel.columns
        return [dict(zip(cols, r)) for r in rel.fetchall()]
    if fmt == "text":
        with open(path, "rb") as f:
            return [{"line": l.decode("utf-8")} for l in f.read().splitlines()]
    raise SystemExit(f"unknown format {fmt}")


def main():
    args = sys.argv[1:]
    fmt = args.pop(0)
    header, delim = False, ","
    files = []
    while args:
        a = args.pop(0)
        if a == "--header":
            header = True
        elif a == "--delim":
            delim = args.pop(0)
        else:
            files.append(a)
    for path in files:
        for r in rows(fmt, path, header, delim):
            print(json.dumps(canon(r), sort_keys=True, ensure_ascii=False))


if __name__ == "__main__":
    main()
