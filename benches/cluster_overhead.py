#!/usr/bin/env python3
"""Times the example job (CDN logs NDJSON.gz -> daily report -> snappy
parquet) run in-process and on a Ballista cluster of one `pbatch scheduler`
and two `pbatch executor`s on this machine, and prints the overhead ratio.

usage: benches/cluster_overhead.py [--rows N] [--runs R] [--pbatch PATH]
                                   [--count C] [--tasks T] [--big]

The job's container is raised to 16U64G x C (default 4: 64 cores asked, so
64 partitions per stage on the cluster); each executor runs T tasks at once
(default: half this machine's cores, so the two share it). Both are timed as
the whole `pbatch run` process; the outputs must hold the same rows. Peak
memory: the engine process's max RSS under GNU time, and each cluster
process's high-water mark (VmHWM). Needs a release pbatch binary
(`cargo build --release`).

--big times a job whose result is as big as its input instead (every row
and column of the logs, written as one snappy parquet file): in-process, on
the cluster with the result streamed to the engine, which writes it, and on
the cluster with an executor writing it (`[cluster] collect_max_bytes`).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_util
from bench_util import max_rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH_TIME = "2026-11-25T01:00:00+08:00"


def free_pair():
    import socket
    while True:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        p = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            a.close()
            b.close()


def hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_hwm(pid):
    """Resets a process's peak RSS (VmHWM) to its current RSS."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--pbatch", default=os.path.join(target, "release", "pbatch"))
    ap.add_argument("--big", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pbatch-cluster-bench-")
    data = os.path.join(work, "data")
    subprocess.run([a.pbatch, "example", "cdn-logs", "--rows", str(a.rows), "--data-dir", data], check=True,
                   stdout=subprocess.DEVNULL)
    spec = os.path.join(work, "spec")
    shutil.copytree(os.path.join(ROOT, "examples/cdn-logs"), spec)
    job_path = os.path.join(spec, "jobs/daily_traffic.json")
    with open(job_path) as f:
        job = json.load(f)
    job["container"] = {"type": "16U64G", "count": a.count}
    with open(job_path, "w") as f:
        json.dump(job, f)
    job_name, check_col = "daily_traffic", "requests"
    out_file = os.path.join(data, "buckets/reports/daily_traffic/2026-11-25/part-00000.parquet")
    if a.big:
        job_name, check_col = "all_rows", "bytes"
        job["computation"]["code"] = "SELECT * FROM logs"
        with open(os.path.join(spec, "jobs/all_rows.json"), "w") as f:
            json.dump(job, f)
        os.makedirs(os.path.join(spec, "jobs/all_rows/exports"))
        with open(os.path.join(spec, "jobs/all_rows/exports/rows.json"), "w") as f:
            json.dump({"type": "kodo", "spec": {"bucket": "reports", "keyPrefix": "all_rows/$(date)/",
                                                "format": "parquet", "compression": "snappy", "fileCount": 1}}, f)
        out_file = os.path.join(data, "buckets/reports/all_rows/2026-11-25/part-00000.parquet")

    env = {**os.environ, "PBATCH_ENGINE_TIMEZONE": "Asia/Shanghai", "PBATCH_LOG": "warn"}
    procs = []
    sched = subprocess.Popen([a.pbatch, "scheduler", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    procs.append(sched)
    addr = sched.stdout.readline().strip().rsplit(" ", 1)[-1]
    for i in range(2):
        port = free_pair()
        procs.append(subprocess.Popen(
            [a.pbatch, "executor", "--scheduler", addr, "--listen", f"127.0.0.1:{port}", "--id", f"exec-{i}",
             "--concurrent-tasks", str(a.tasks), "--work-dir", os.path.join(work, f"work-{i}")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(3)
    try:
        results, cluster_rss = {}, {}
        modes = ["local", "cluster"] + (["cluster, executor writes"] if a.big else [])
        for mode in modes:
            menv = dict(env)
            if mode != "local":
                menv["PBATCH_CLUSTER_SCHEDULER"] = addr
                # streamed to the engine unless an executor is to write
                menv["PBATCH_CLUSTER_COLLECT_MAX_BYTES"] = "0" if "executor" in mode else str(1 << 60)
            times, rss = [], 0.0
            for p in procs:
                reset_hwm(p.pid)
            for _ in range(a.runs):
                t0 = time.perf_counter()
                kib = max_rss_kib([a.pbatch, "run", spec, job_name, "--data-dir", data, "--batch-time",
                                   BATCH_TIME, "--quiet"], menv)
                times.append(time.perf_counter() - t0)
                rss = max(rss, kib / 1024)
            import pyarrow.parquet as pq
            t = pq.read_table(out_file)
            results[mode] = (times, rss, (t.num_rows, sum(t.column(check_col).to_pylist())))
            cluster_rss[mode] = [hwm_mib(p.pid) for p in procs]
        assert all(r[2] == results["local"][2] for r in results.values()), f"outputs differ: {results}"
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    for mode, (times, rss, rows) in results.items():
        print(f"rows {a.rows}: {bench_util.timing(mode, times)}, engine peak {rss:.0f} MiB, output {rows}")
    for mode in modes[1:]:
        print(f"{mode}: cluster processes' peak (scheduler, executors): "
              f"{', '.join(f'{m:.0f}' for m in cluster_rss[mode])} MiB")
    local = statistics.median(results["local"][0])
    for mode in modes[1:]:
        cluster = statistics.median(results[mode][0])
        print(f"ratio {mode} / local = {cluster / local:.2f} (container 16U64G x {a.count}, "
              f"2 executors x {a.tasks} tasks)")


if __name__ == "__main__":
    sys.exit(main())
