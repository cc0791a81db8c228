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


def max_rss_kib(cmd, env):
    """Runs cmd under GNU time and returns its peak RSS in KiB (a child forked
    from a big Python process would report that process's RSS instead)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    return int(out.stderr.strip().splitlines()[-1])
