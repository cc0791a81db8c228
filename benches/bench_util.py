"""What the DuckDB comparison scripts share: the CDN-log example's fields and
a peak-memory measure."""
import subprocess

# name, pbatch valtype, DuckDB type
FIELDS = [("ts", "date", "TIMESTAMPTZ"), ("domain", "string", "VARCHAR"), ("client_ip", "string", "VARCHAR"),
          ("method", "string", "VARCHAR"), ("url_path", "string", "VARCHAR"), ("status", "long", "BIGINT"),
          ("bytes", "long", "BIGINT"), ("duration_ms", "long", "BIGINT"), ("referer", "string", "VARCHAR"),
          ("user_agent", "string", "VARCHAR"), ("cache", "string", "VARCHAR"), ("region", "string", "VARCHAR")]

# DuckDB's `columns=` map of FIELDS
DUCK_COLUMNS = "{" + ",".join(f"'{k}':'{t}'" for k, _, t in FIELDS) + "}"


def timing(label, times):
    """`label 0.123 s (runs 0.120, 0.123, 0.130)`: the median and every run."""
    import statistics
    runs = ", ".join(f"{t:.3f}" for t in times)
    return f"{label} {statistics.median(times):.3f} s (runs {runs})"


def max_rss_kib(cmd, env):
    """Runs cmd under GNU time and returns its peak RSS in KiB (a child forked
    from a big Python process would report that process's RSS instead)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return int(out.stderr.strip().splitlines()[-1])


def args_and_data(prefix):
    """Parses --rows / --runs / --pbatch and generates the CDN-log example's
    json.gz files into a new temporary data dir; returns (args, data dir)."""
    import argparse
    import os
    import tempfile
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap.add_argument("--pbatch", default=os.path.join(target, "release", "pbatch"))
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix=prefix)
    subprocess.run([a.pbatch, "example", "cdn-logs", "--rows", str(a.rows), "--data-dir", data], check=True,
                   stdout=subprocess.DEVNULL)
    return a, data
