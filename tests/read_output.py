#!/usr/bin/env python3
"""Reads pbatch output files with independent readers and prints one
canonical JSON object per row (sorted keys), for the fixture harness.

usage: read_output.py FORMAT [--header] [--delim D] FILE...

parquet and orc are read by pyarrow; csv and json by DuckDB; text line by line;
FORMAT-hive reads a Hive-partitioned folder with pyarrow.dataset.
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


def decompressed(path):
    """Row formats with a codec the readers do not know: decompress with an
    independent decoder (python's bz2 / zlib, cramjam's LZ4 frame and snappy
    framing) into a temporary plain file."""
    import os
    import tempfile
    decoders = {
        ".bz2": lambda b: __import__("bz2").decompress(b),
        ".deflate": lambda b: __import__("zlib").decompress(b),
        ".lz4": lambda b: bytes(__import__("cramjam").lz4.decompress(b)),
        ".sz": lambda b: bytes(__import__("cramjam").snappy.decompress(b)),
    }
    for ext, dec in decoders.items():
        if path.endswith(ext):
            with open(path, "rb") as f:
                data = dec(f.read())
            fd, tmp = tempfile.mkstemp(suffix=os.path.basename(path)[: -len(ext)])
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return tmp
    return path


def rows(fmt, path, header, delim):
    if fmt in ("csv", "json", "text"):
        path = decompressed(path)
    if fmt in ("parquet-hive", "json-hive", "csv-hive"):
        import pyarrow.dataset as ds
        base = fmt.split("-")[0]
        file_format = {"parquet": "parquet", "json": "json", "csv": ds.CsvFileFormat(
            read_options=__import__("pyarrow.csv").csv.ReadOptions(autogenerate_column_names=not header),
            parse_options=__import__("pyarrow.csv").csv.ParseOptions(delimiter=delim))}[base]
        return ds.dataset(path, format=file_format, partitioning="hive").to_table().to_pylist()
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
