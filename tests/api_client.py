#!/usr/bin/env python3
"""An independent client for `pbatch serve` (the Pandora batch /v2 REST API).

Written from /work/shared/research/pandora-api.md sections 1-3 only, stdlib
only, so it checks the server against the wire protocol rather than against
the server's own code.

usage:
  api_client.py selftest
  api_client.py lifecycle   --url URL --ak AK --sk SK --data-dir DIR [--key-prefix K]
  api_client.py errors      --url URL --ak AK --sk SK
  api_client.py concurrency --url URL --ak AK --sk SK [--clients 50]

Each check prints `ok <what>`; the first failure prints the request, status and
body and exits 1. `lifecycle` expects a server with no ds1/job1 yet whose
embedded default maps kodo bucket B to DIR/buckets/B/.
"""
import argparse
import base64
import email.utils
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import sys
import threading
import time
from typing import NamedTuple
from urllib.parse import urlsplit

AUTO = object()  # content_type: choose the way the Go SDK does
SIGN = object()  # auth: sign the request with AK/SK (§2.1)

# routes whose bodies the Go SDK sends with no Content-Type (§1.1, §1.2)
NO_CONTENT_TYPE = re.compile(r"^/v2/(variables(/[^/?]*)?|workflows/[^/?]+/(start|stop))$")
VARIABLE = re.compile(r"^/v2/variables/([^/?]+)$")


class Text(str):
    """A response body that was not JSON (kept verbatim)."""


# ---------------------------------------------------------------- signing ---

def go_canonical(name):
    """Go's textproto.CanonicalMIMEHeaderKey: `x-qiniu-a` -> `X-Qiniu-A`."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def canonical_qiniu_headers(headers):
    """`\\n<lowercase name>:<value>` for every X-Qiniu-* header, sorted."""
    picked = []
    for name, value in headers.items():
        c = go_canonical(name)
        if c.startswith("X-Qiniu-") and len(c) > len("X-Qiniu-"):
            picked.append((c, value))
    return "".join("\n%s:%s" % (c.lower(), v) for c, v in sorted(picked))


def string_to_sign(method, path, content_type="", date="", content_md5="", headers=None):
    resource = path.split("?", 1)[0]  # the query string is never signed
    return "%s\n%s\n%s\n%s\n%s%s" % (method.upper(), content_md5, content_type, date,
                                     canonical_qiniu_headers(headers or {}), resource)


def b64_hmac_sha1(sk, msg):
    digest = hmac.new(sk.encode(), msg.encode(), hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode()


def make_token(ak, sk, method, path, expires, content_type="", content_md5="", headers=""):
    """§2.2: `Pandora <AK>:<sig>:<encodedDesc>` (desc keys in Go field order)."""
    desc = json.dumps({"resource": path.split("?", 1)[0], "expires": int(expires),
                       "contentMD5": content_md5, "contentType": content_type,
                       "headers": headers, "method": method.upper()},
                      separators=(",", ":"), ensure_ascii=False)
    encoded = base64.urlsafe_b64encode(desc.encode()).decode()
    return "Pandora %s:%s:%s" % (ak, b64_hmac_sha1(sk, encoded), encoded)


# ----------------------------------------------------------------- client ---

class Client:
    def __init__(self, base_url, ak, sk, timeout=30):
        u = urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.prefix = u.path.rstrip("/")
        self.ak, self.sk, self.timeout = ak, sk, timeout

    def token(self, method, path, expires):
        return make_token(self.ak, self.sk, method, self.prefix + path, expires)

    def build(self, method, path, body=None, content_type=AUTO, headers=None,
              auth=SIGN, date=None):
        """The headers and body bytes of a request, signed as the Go SDK does."""
        method = method.upper()
        route = path.split("?", 1)[0]
        if body is None and method == "DELETE" and VARIABLE.match(route):
            body = {"name": VARIABLE.match(route).group(1)}  # the SDK sends one
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        if isinstance(body, str):
            body = body.encode()
        if content_type is AUTO:
            content_type = None if body is None or NO_CONTENT_TYPE.match(route) else "application/json"
        h = dict(headers or {})
        h["Date"] = date or email.utils.formatdate(usegmt=True)
        if content_type is not None:
            h["Content-Type"] = content_type
        if auth is SIGN:
            sts = string_to_sign(method, self.prefix + path, content_type or "",
                                 h["Date"], h.get("Content-MD5", ""), h)
            h["Authorization"] = "Pandora %s:%s" % (self.ak, b64_hmac_sha1(self.sk, sts))
        elif auth is not None:
            h["Authorization"] = auth
        return h, body

    def request(self, method, path, body=None, content_type=AUTO, headers=None,
                auth=SIGN, date=None):
        """Returns (status, headers, parsed JSON or Text)."""
        h, data = self.build(method, path, body, content_type, headers, auth, date)
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            # http.client adds Host, Content-Length (0 for a body-less POST) and
            # no Content-Type of its own (urllib.request would add one)
            conn.request(method.upper(), self.prefix + path, body=data, headers=h)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text.strip() else Text(text)
        except ValueError:
            parsed = Text(text)
        return resp.status, resp.msg, parsed


# ------------------------------------------------------------ check tools ---

class Failure(Exception):
    pass


class Resp(NamedTuple):
    method: str
    path: str
    status: int
    headers: object
    data: object


def ok(what):
    print("ok " + what, flush=True)


def need(cond, what, r=None):
    if not cond:
        msg = "FAIL " + what
        if r is not None:
            msg += "\n  %s %s -> HTTP %s\n  body: %r" % (r.method, r.path, r.status, r.data)
        raise Failure(msg)


def call(c, method, path, body=None, want=200, what=None, **kw):
    """One request plus the envelope checks every answer must pass (§3)."""
    what = what or "%s %s" % (method, path)
    try:
        r = Resp(method, path, *c.request(method, path, body, **kw))
    except (OSError, http.client.HTTPException) as e:
        raise Failure("FAIL %s: transport error %r" % (what, e))
    need(r.headers.get("X-Reqid"), what + ": X-Reqid header present", r)
    if r.status >= 400:
        need(r.headers.get("Content-Type") == "application/json",
             what + ": error Content-Type exactly application/json (got %r)"
             % r.headers.get("Content-Type"), r)
        need(isinstance(r.data, dict) and isinstance(r.data.get("error"), str),
             what + ': error body is {"error": string}', r)
    if want is not None:
        need(r.status == want, "%s: expected HTTP %s" % (what, want), r)
    return r


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def error_code_is(r, code):
    return isinstance(r.data, dict) and str(r.data.get("error", "")).startswith(code)


# --------------------------------------------------------------- selftest ---

VEC_DATE = "Mon, 02 Jan 2006 15:04:05 GMT"
VECTORS = [  # (method, path, content type, extra headers, string to sign, Authorization)
    ("POST", "/v2/datasources/ds1", "application/json", {},
     "POST\n\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\n/v2/datasources/ds1",
     "Pandora AK_EXAMPLE:UqMfsutbzsZ_N-cebiAwQzU7c0k="),
    ("GET", "/v2/jobs?srcDatasource=ds1", None, {},
     "GET\n\n\nMon, 02 Jan 2006 15:04:05 GMT\n/v2/jobs",
     "Pandora AK_EXAMPLE:seJAOmcJDXR9ffaO6uiWy__TcXI="),
    ("POST", "/v2/batch/actions/rerun", "application/json",
     {"X-Qiniu-B": "2", "X-Qiniu-A": "1", "X-Resource-Owner": "123"},
     "POST\n\napplication/json\nMon, 02 Jan 2006 15:04:05 GMT\n\nx-qiniu-a:1\nx-qiniu-b:2"
     "/v2/batch/actions/rerun",
     "Pandora AK_EXAMPLE:kpxLJ5KH4TlfEaReMSe1EDnHKS4="),
]
TOKEN_VECTOR = (
    "Pandora AK_EXAMPLE:xb0IMnv0MODECePxK_0Rzx2j0Z4=:eyJyZXNvdXJjZSI6Ii92Mi9qb2JzL2pvYjEv"
    "aGlzdG9yeSIsImV4cGlyZXMiOjQxMDI0NDQ4MDAsImNvbnRlbnRNRDUiOiIiLCJjb250ZW50VHlwZSI6IiIs"
    "ImhlYWRlcnMiOiIiLCJtZXRob2QiOiJHRVQifQ==")


def selftest(_args):
    c = Client("http://127.0.0.1:9", "AK_EXAMPLE", "SK_EXAMPLE")
    for method, path, ct, extra, sts, auth in VECTORS:
        what = "%s %s" % (method, path)
        got = string_to_sign(method, path, ct or "", VEC_DATE, "", extra)
        need(got == sts, "string to sign of %s: %r != %r" % (what, got, sts))
        body = "{}" if ct else None
        h, _ = c.build(method, path, body, content_type=ct, headers=extra, date=VEC_DATE)
        need(h["Authorization"] == auth, "signature of %s: %r != %r" % (what, h["Authorization"], auth))
        ok("signature vector " + what)
    got = c.token("GET", "/v2/jobs/job1/history", 4102444800)
    need(got == TOKEN_VECTOR, "token vector: %r != %r" % (got, TOKEN_VECTOR))
    ok("token vector GET /v2/jobs/job1/history")
    # Content-Type choice and the variable-delete body, as the Go SDK sends them
    cases = [("POST", "/v2/jobs/j", {}, "application/json", b"{}"),
             ("POST", "/v2/variables/v", {"name": "v"}, None, b'{"name":"v"}'),
             ("PUT", "/v2/variables/v", {"name": "v"}, None, b'{"name":"v"}'),
             ("DELETE", "/v2/variables/v", None, None, b'{"name":"v"}'),
             ("POST", "/v2/workflows/w/start", {"name": "w"}, None, b'{"name":"w"}'),
             ("POST", "/v2/jobs/j/actions/stop", None, None, None),
             ("GET", "/v2/variables?type=user", None, None, None)]
    for method, path, body, ct, raw in cases:
        h, data = c.build(method, path, body)
        need(h.get("Content-Type") == ct and data == raw,
             "%s %s: Content-Type %r body %r" % (method, path, h.get("Content-Type"), data))
    ok("Content-Type and body choice per route")


# -------------------------------------------------------------- lifecycle ---

HOSTS = ["alpha", "beta", "gamma"]
SCHEMA = [{"key": k, "valtype": t, "required": True, "description": None}
          for k, t in (("host", "string"), ("status", "long"), ("bytes", "long"))]
KODO_SRC = {"bucket": "logs", "keyPrefixes": ["in/"], "fileType": "json"}


def write_input(data_dir):
    rows = [{"host": HOSTS[i % 3], "status": [200, 404, 500][i % 4 % 3], "bytes": 100 * i + 7}
            for i in range(20)]
    folder = os.path.join(data_dir, "buckets", "logs", "in")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "part1.json"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    expected = {}
    for r in rows:
        n, b = expected.get(r["host"], (0, 0))
        expected[r["host"]] = (n + 1, b + r["bytes"])
    return expected


def read_output(root, since=0.0):
    """(files, rows) of the JSON-lines files under root modified at or after `since`."""
    paths = [root] if os.path.isfile(root) else [
        os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f[:1] not in "._"]
    files, rows = [], []
    for p in sorted(paths):
        if os.path.getmtime(p) < since:
            continue
        files.append(p)
        with open(p, "rb") as f:
            raw = f.read()
        text = (gzip.decompress(raw) if p.endswith(".gz") else raw).decode()
        if text.lstrip().startswith("["):
            rows.extend(json.loads(text))
        else:
            rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return files, rows


def check_output(root, expected, since, what):
    files, rows = read_output(root, since)
    need(files, "%s: output files under %s" % (what, root))
    got = {}
    for row in rows:
        need(isinstance(row, dict) and set(row) == {"host", "n", "b"}, "%s: row %r" % (what, row))
        need(is_int(row["n"]) and is_int(row["b"]), "%s: n and b are integers in %r" % (what, row))
        need(row["host"] not in got, "%s: host %r appears twice" % (what, row["host"]))
        got[row["host"]] = (row["n"], row["b"])
    need(got == expected, "%s: rows %r != expected %r" % (what, got, expected))
    ok("%s: %d file(s), %d rows match the aggregation" % (what, len(files), len(rows)))


def wait_history(c, job, timeout, what):
    deadline, seen = time.time() + timeout, []
    while True:
        r = call(c, "GET", "/v2/jobs/%s/history" % job, what=what)
        need(isinstance(r.data, dict) and is_int(r.data.get("total"))
             and isinstance(r.data.get("history"), list), what + ": {total:int, history:[...]}", r)
        h = r.data["history"][0] if r.data["history"] else {}
        status = h.get("status")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "Successful":
            break
        need(status not in ("Failed", "Canceled"), what + ": run ended %s" % status, r)
        need(time.time() < deadline, "%s: not Successful after %ss (saw %s)" % (what, timeout, seen), r)
        time.sleep(0.3)
    need(is_int(h.get("runId")) and is_int(h.get("duration")),
         what + ": runId and duration are integers", r)
    need(all(isinstance(h.get(k), str) for k in ("batchTime", "startTime", "endTime")),
         what + ": batchTime/startTime/endTime are strings", r)
    need(isinstance(h.get("message", ""), str), what + ": message is a string", r)
    ok("%s: Successful, runId %s, duration %ss (statuses seen: %s)"
       % (what, h["runId"], h["duration"], " -> ".join(map(str, seen))))
    return h


def lifecycle(args):
    c = Client(args.url, args.ak, args.sk)
    expected = write_input(args.data_dir)
    ok("wrote 20 input rows to buckets/logs/in/part1.json")
    # the folder of the keyPrefix's static part (a manual job's keyPrefix
    # ending with '/' is a folder; otherwise it names the file)
    static = args.key_prefix.split("$(", 1)[0]
    out_root = os.path.join(args.data_dir, "buckets", "outputs",
                            static if "$(" not in args.key_prefix and not static.endswith("/")
                            else static.rsplit("/", 1)[0] if "/" in static else "")
    shutil.rmtree(out_root, ignore_errors=True)

    ds = {"region": "nb", "type": "kodo", "spec": KODO_SRC, "schema": SCHEMA,
          "noVerifySchema": True, "workflow": ""}
    call(c, "POST", "/v2/datasources/ds1", ds)
    ok("create datasource ds1")
    r = call(c, "POST", "/v2/datasources/ds1", ds, want=409)
    need(error_code_is(r, "E18601"), "duplicate datasource: error starts with E18601", r)
    ok("duplicate datasource -> 409 E18601")
    typo = dict(ds, spec={k if k != "keyPrefixes" else "keyPrefix": v for k, v in KODO_SRC.items()})
    r = call(c, "POST", "/v2/datasources/ds2", typo, want=400)
    need(error_code_is(r, "E18109") and "did you mean `keyPrefixes`?" in r.data["error"],
         "a misspelled key: 400 E18109 naming keyPrefixes", r)
    call(c, "GET", "/v2/datasources/ds2", want=404)
    ok("misspelled keyPrefix -> 400 E18109, did you mean `keyPrefixes`?")

    r = call(c, "GET", "/v2/datasources/ds1")
    d = r.data
    need(isinstance(d, dict) and d.get("region") == "nb" and str(d.get("type")).lower() == "kodo"
         and isinstance(d.get("spec"), dict) and d.get("workflow") == ""
         and isinstance(d.get("fromDag", False), bool), "GET datasource shape", r)
    need(all(d["spec"].get(k) == v for k, v in KODO_SRC.items()), "GET datasource spec", r)
    need([(e.get("key"), e.get("valtype")) for e in d.get("schema") or []]
         == [(e["key"], e["valtype"]) for e in SCHEMA], "GET datasource schema", r)
    ok("get datasource ds1")
    r = call(c, "GET", "/v2/datasources")
    items = r.data.get("datasources") if isinstance(r.data, dict) else None
    need(isinstance(items, list), 'list datasources: {"datasources":[...]}', r)
    mine = [i for i in items if isinstance(i, dict) and i.get("name") == "ds1"]
    need(len(mine) == 1 and {"name", "region", "type", "spec", "schema", "workflow"} <= set(mine[0]),
         "list datasources: ds1 with name/region/type/spec/schema/workflow", r)
    ok("list datasources")
    r = call(c, "GET", "/v2/datasources/ds1/exists")
    need(r.data == {"exist": True}, 'exists ds1: {"exist":true}', r)
    r = call(c, "GET", "/v2/datasources/nope/exists")
    need(r.data == {"exist": False}, 'exists nope: {"exist":false}', r)
    ok("datasource exists true/false")

    r = call(c, "POST", "/v2/schemas", {"type": "kodo", "spec": KODO_SRC})
    got = r.data.get("schema") if isinstance(r.data, dict) else None
    need(isinstance(got, list) and all(isinstance(e, dict) for e in got), "schema inference shape", r)
    need(sorted((e.get("key"), e.get("valtype")) for e in got)
         == [("bytes", "long"), ("host", "string"), ("status", "long")], "inferred fields", r)
    ok("schema inference: host string, status long, bytes long")

    job = {"srcs": [{"name": "ds1", "fileFilter": "", "type": "datasource", "tableName": "t1"}],
           "computation": {"code": "select host, count(*) as n, sum(bytes) as b from t1 group by host",
                           "type": "sql"},
           "container": {"type": "1U2G", "count": 1}, "scheduler": {"type": "manual"}}
    call(c, "POST", "/v2/jobs/job1", job)
    ok("create job job1")
    r = call(c, "GET", "/v2/jobs/job1")
    need(isinstance(r.data, dict) and r.data.get("computation", {}).get("code") == job["computation"]["code"]
         and isinstance(r.data.get("srcs"), list), "get job job1 shape", r)
    ok("get job job1")
    export = {"type": "kodo", "spec": {"bucket": "outputs", "keyPrefix": args.key_prefix, "format": "json",
                                       "fileCount": 1, "saveMode": "overwrite", "retention": 0}}
    call(c, "POST", "/v2/jobs/job1/exports/e1", export)
    ok("create export e1 (keyPrefix %r)" % args.key_prefix)

    call(c, "POST", "/v2/jobs/job1/actions/start", {})
    ok("start job1")
    first = wait_history(c, "job1", args.timeout, "job1 history")
    check_output(out_root, expected, 0.0, "first run output")

    started = time.time()
    r = call(c, "POST", "/v2/batch/actions/rerun", {"jobName": "job1", "runId": first["runId"]})
    need(isinstance(r.data, dict) and r.data.get("preStatus") == "Successful"
         and r.data.get("postStatus") == "Running" and is_int(r.data.get("rerunCount"))
         and r.data["rerunCount"] == 1, "rerun: preStatus Successful, postStatus Running, rerunCount 1", r)
    ok("rerun job1 run %s" % first["runId"])
    again = wait_history(c, "job1", args.timeout, "job1 history after rerun")
    need(again["runId"] == first["runId"], "rerun keeps runId %s (history[0] %r)" % (first["runId"], again))
    check_output(out_root, expected, started, "rerun output (files written after the rerun)")
    routes(c, ds, job, export)


def routes(c, ds, job, export):
    """Every route the life cycle above leaves out, with status, code and shape."""
    # exports: list, get, exists, update
    r = call(c, "GET", "/v2/jobs/job1/exports")
    items = r.data.get("exports") if isinstance(r.data, dict) else None
    need(isinstance(items, list) and [(i.get("name"), str(i.get("type")).lower()) for i in items]
         == [("e1", "kodo")] and isinstance(items[0].get("spec"), dict),
         'list exports: {"exports":[{"name":"e1","type":"kodo","spec":{...}}]}', r)
    r = call(c, "GET", "/v2/jobs/job1/exports/e1")
    need(isinstance(r.data, dict) and str(r.data.get("type")).lower() == "kodo"
         and r.data.get("spec", {}).get("keyPrefix") == export["spec"]["keyPrefix"]
         and r.data.get("workflow") == "", "get export: type, spec, workflow", r)
    r = call(c, "GET", "/v2/jobs/job1/exports/e1/exists")
    need(r.data == {"exist": True}, 'export exists: {"exist":true}', r)
    changed = {"type": "kodo", "spec": dict(export["spec"], fileCount=2)}
    call(c, "PUT", "/v2/jobs/job1/exports/e1", changed)
    r = call(c, "GET", "/v2/jobs/job1/exports/e1")
    need(r.data.get("spec", {}).get("fileCount") == 2, "PUT export: fileCount now 2", r)
    r = call(c, "PUT", "/v2/jobs/job1/exports/nope", changed, want=404)
    need(error_code_is(r, "E18611"), "PUT a missing export: E18611", r)
    ok("exports: list, get, exists, PUT, PUT missing -> 404 E18611")

    # datasource update (fields may only be added), job update (replaced whole)
    more = dict(ds, schema=ds["schema"] + [{"key": "path", "valtype": "string", "required": False,
                                            "description": None}])
    call(c, "PUT", "/v2/datasources/ds1", more)
    r = call(c, "GET", "/v2/datasources/ds1")
    need([e.get("key") for e in r.data.get("schema", [])] == ["host", "status", "bytes", "path"],
         "PUT datasource: field path added", r)
    code = "select host, count(*) as n, sum(bytes) as b from t1 where status >= 0 group by host"
    call(c, "PUT", "/v2/jobs/job1", dict(job, computation={"code": code, "type": "sql"}))
    r = call(c, "GET", "/v2/jobs/job1")
    need(r.data.get("computation", {}).get("code") == code, "PUT job: new code", r)
    ok("PUT datasource (adds a field), PUT job (new code)")

    # a depend job; the filters of GET /v2/jobs; deletes refused while others depend
    job2 = {"srcs": [{"name": "job1", "fileFilter": "", "type": "job", "tableName": "up"}],
            "computation": {"code": "select host from up", "type": "sql"},
            "scheduler": {"type": "depend"}}
    call(c, "POST", "/v2/jobs/job2", job2)
    for query, want in (("srcDatasource=ds1", ["job1"]), ("srcJob=job1", ["job2"]),
                        ("srcDatasource=nope", []), ("", ["job1", "job2"])):
        r = call(c, "GET", "/v2/jobs" + ("?" + query if query else ""))
        jobs = r.data.get("jobs") if isinstance(r.data, dict) else None
        need(isinstance(jobs, list) and sorted(j.get("name") for j in jobs) == want,
             "GET /v2/jobs?%s lists %s" % (query, want), r)
    ok("GET /v2/jobs with ?srcDatasource and ?srcJob")
    r = call(c, "DELETE", "/v2/datasources/ds1", want=400)
    need(error_code_is(r, "E18603"), "deleting a datasource a job reads: E18603", r)
    r = call(c, "DELETE", "/v2/jobs/job1", want=400)
    need(error_code_is(r, "E18608"), "deleting a job another job reads: E18608", r)
    ok("deletes refused while others depend: E18603, E18608")

    # backfill (a pbatch addition): a manual job takes explicit times
    before = call(c, "GET", "/v2/jobs/job1/history").data["total"]
    times = ["2026-11-20 01:00:00", "2026-11-20T02:00:00+08:00"]
    r = call(c, "POST", "/v2/jobs/job1/actions/backfill", {"times": times, "maxActive": 2})
    need(isinstance(r.data, dict) and r.data.get("id") == 1 and r.data.get("total") == 2
         and r.data.get("reprocess") == "none" and r.data.get("maxActive") == 2, "backfill: id 1, 2 times", r)
    deadline = time.time() + 60
    while True:
        r = call(c, "GET", "/v2/jobs/job1/backfills/1")
        if r.data.get("status") != "Running":
            break
        need(time.time() < deadline, "backfill 1 not Done after 60 s", r)
        time.sleep(0.3)
    need(r.data.get("status") == "Done" and r.data.get("done") == 2
         and [b.get("batchTime") for b in r.data.get("batches", [])] == ["2026-11-20 01:00:00", "2026-11-20 02:00:00"]
         and all(is_int(b.get("runId")) and b.get("state") == "done" for b in r.data["batches"]),
         "backfill 1: Done, both batch times done with their runIds", r)
    r = call(c, "GET", "/v2/jobs/job1/history")
    need(r.data["total"] == before + 2, "history has the 2 backfilled batches", r)
    r = call(c, "GET", "/v2/jobs/job1/backfills")
    need(isinstance(r.data.get("backfills"), list) and [(b.get("id"), b.get("done"), "batches" in b)
                                                         for b in r.data["backfills"]] == [(1, 2, False)],
         "GET backfills: one, with progress", r)
    r = call(c, "POST", "/v2/jobs/job1/actions/backfill", {"from": "2026-11-01", "to": "2026-11-02"}, want=400)
    need(error_code_is(r, "E18690") and "give its batch times as times" in r.data["error"],
         "a manual job's backfill without times: 400 E18690", r)
    r = call(c, "POST", "/v2/jobs/job1/actions/backfill", {"times": times, "maxactive": 2}, want=400)
    need(error_code_is(r, "E18690") and "did you mean `maxActive`?" in r.data["error"],
         "a misspelled backfill key: 400 E18690", r)
    r = call(c, "GET", "/v2/jobs/job1/backfills/9", want=404)
    need(error_code_is(r, "E18691"), "a missing backfill: 404 E18691", r)
    r = call(c, "POST", "/v2/jobs/job1/backfills/1/stop", None)
    need(r.data.get("status") == "Stopped", "stop backfill 1: Stopped", r)
    ok("backfill: create, poll, list, refusals (E18690, E18691), stop")

    # dry run (a pbatch addition): what a batch would read and write, nothing written
    r = call(c, "POST", "/v2/jobs/job1/actions/plan", {"batchTime": "2026-11-20 01:00:00"})
    d = r.data if isinstance(r.data, dict) else {}
    srcs, exports = d.get("srcs") or [{}], d.get("exports") or [{}]
    need(d.get("batchTime") == "2026-11-20 01:00:00" and d.get("sql") == code
         and srcs[0].get("datasource") == "ds1" and is_int(srcs[0].get("files")) and srcs[0]["files"] >= 1
         and "TableScan: t1" in d.get("logicalPlan", "") and exports[0].get("export") == "e1"
         and len(exports[0].get("writes", [])) == 2 and "error" not in exports[0],
         "plan: batchTime, sql, srcs, logicalPlan, e1 writes 2 files", r)
    r = call(c, "POST", "/v2/jobs/job1/actions/plan", None)
    need(isinstance(r.data, dict) and r.data.get("job") == "job1", "plan without a body: now", r)
    r = call(c, "POST", "/v2/jobs/job1/actions/plan", {"batchtime": "2026-11-20 01:00:00"}, want=400)
    need(error_code_is(r, "E18007") and "batchTime" in r.data["error"], "a misspelled plan key: 400, did you mean batchTime", r)
    r = call(c, "POST", "/v2/jobs/nope/actions/plan", {}, want=404)
    need(error_code_is(r, "E18606"), "plan of a missing job: 404 E18606", r)
    ok("plan: a dry run's body, no body, a misspelled key, a missing job")

    # stop a job
    call(c, "POST", "/v2/jobs/job1/actions/stop", None)
    ok("stop job1")

    # variables: create, update, get, list, delete
    call(c, "POST", "/v2/variables/v1", {"name": "v1", "type": "string", "value": "a", "format": ""})
    call(c, "PUT", "/v2/variables/v1", {"name": "v1", "type": "string", "value": "b", "format": ""})
    r = call(c, "GET", "/v2/variables/v1")
    need(r.data == {"name": "v1", "type": "string", "value": "b", "format": ""}, "PUT variable: value b", r)
    r = call(c, "GET", "/v2/variables?type=user")
    need("v1" in {v.get("name") for v in r.data.get("variables", [])}, "list user variables has v1", r)
    call(c, "DELETE", "/v2/variables/v1")
    r = call(c, "GET", "/v2/variables/v1", want=404)
    need(error_code_is(r, "E18654"), "deleted variable: E18654", r)
    ok("variables: create, PUT, get, list, delete")

    # workflows: every route
    call(c, "POST", "/v2/workflows/wf1", {"name": "wf1", "region": "nb"})
    r = call(c, "GET", "/v2/workflows")
    need(isinstance(r.data, list) and [w.get("name") for w in r.data] == ["wf1"],
         "list workflows: a top-level array", r)
    r = call(c, "POST", "/v2/workflows/wf1/start", {"name": "wf1"}, want=400)
    need(error_code_is(r, "E18644"), "starting an empty workflow: E18644", r)
    call(c, "PUT", "/v2/workflows/wf1", {"name": "wf1", "region": "nb", "comment": "nightly"})
    call(c, "POST", "/v2/datasources/ds_wf", dict(ds, workflow="wf1"))
    call(c, "POST", "/v2/jobs/job_wf", dict(job, srcs=[dict(job["srcs"][0], name="ds_wf")]))
    r = call(c, "GET", "/v2/workflows/wf1")
    need(r.data.get("comment") == "nightly" and {"ds_wf-datasource", "job_wf-job"} <= set(r.data.get("nodes", {}))
         and r.data.get("canStart") is True and all(isinstance(r.data.get(k), str)
                                                     for k in ("createTime", "updateTime", "status")),
         "get workflow: comment, nodes of its datasource and job, canStart", r)
    call(c, "POST", "/v2/workflows/wf1/start", {"name": "wf1"})
    r = call(c, "GET", "/v2/workflows/wf1/status")
    need(r.data.get("name") == "wf1" and r.data.get("status") == "Started"
         and {(n.get("name"), n.get("type")) for n in r.data.get("nodes", [])}
         >= {("ds_wf", "datasource"), ("job_wf", "job")}, "workflow status: Started, its nodes", r)
    r = call(c, "POST", "/v2/workflows/wf1/start", {"name": "wf1"}, want=400)
    need(error_code_is(r, "E18644"), "starting a Started workflow: E18644", r)
    call(c, "POST", "/v2/workflows/wf1/stop", {"name": "wf1"})
    r = call(c, "POST", "/v2/workflows/wf1/stop", {"name": "wf1"}, want=400)
    need(error_code_is(r, "E18645"), "stopping a Stopped workflow: E18645", r)
    r = call(c, "DELETE", "/v2/workflows/wf1", want=400)
    need(error_code_is(r, "E18642"), "deleting a workflow that holds a datasource: E18642", r)
    call(c, "DELETE", "/v2/jobs/job_wf")
    call(c, "DELETE", "/v2/datasources/ds_wf")
    call(c, "DELETE", "/v2/workflows/wf1")
    r = call(c, "GET", "/v2/workflows/wf1", want=404)
    need(error_code_is(r, "E18641"), "deleted workflow: E18641", r)
    ok("workflows: create, list, PUT, get, start, status, stop, delete (and their refusals)")

    # delete everything; a job created again under the same name has no history
    call(c, "DELETE", "/v2/jobs/job1/exports/e1")
    r = call(c, "GET", "/v2/jobs/job1/exports/e1", want=404)
    need(error_code_is(r, "E18611"), "deleted export: E18611", r)
    call(c, "DELETE", "/v2/jobs/job2")
    call(c, "DELETE", "/v2/jobs/job1")
    r = call(c, "GET", "/v2/jobs/job1", want=404)
    need(error_code_is(r, "E18606"), "deleted job: E18606", r)
    call(c, "POST", "/v2/jobs/job1", job)
    r = call(c, "GET", "/v2/jobs/job1/history")
    need(r.data == {"total": 0, "history": []}, "a job created again starts with an empty history", r)
    call(c, "DELETE", "/v2/jobs/job1")
    call(c, "DELETE", "/v2/datasources/ds1")
    r = call(c, "GET", "/v2/datasources/ds1/exists")
    need(r.data == {"exist": False}, "deleted datasource: exists false", r)
    ok("deleted everything; job1 created again has an empty history")


# ----------------------------------------------------------------- errors ---

def errors(args):
    c = Client(args.url, args.ak, args.sk)
    bad = {"error": "bad token"}
    cases = [("wrong signature", Client(args.url, args.ak, args.sk + "x"), {}),
             ("unknown AK", Client(args.url, args.ak + "x", args.sk), {}),
             ("missing Authorization", c, {"auth": None}),
             ("Date 20 minutes old", c,
              {"date": email.utils.formatdate(time.time() - 20 * 60, usegmt=True)}),
             ("expired token", c, {"auth": c.token("GET", "/v2/datasources", time.time() - 60)}),
             ("token for another path", c, {"auth": c.token("GET", "/v2/jobs", time.time() + 600)})]
    for what, client, kw in cases:
        r = call(client, "GET", "/v2/datasources", want=401, what=what, **kw)
        need(r.data == bad, what + ': body {"error":"bad token"}', r)
        ok(what + " -> 401 bad token")
    call(c, "GET", "/v2/datasources", auth=c.token("GET", "/v2/datasources", time.time() + 600),
         what="valid token")
    ok("valid token -> 200")
    r = call(c, "GET", "/v2/datasources/nope", want=404)
    need(error_code_is(r, "E18602"), "missing datasource: error starts with E18602", r)
    ok("GET /v2/datasources/nope -> 404 E18602")
    for method, path in (("GET", "/v2/no_such_route"), ("POST", "/v2/datasources/a/b/c")):
        call(c, method, path, {} if method == "POST" else None, want=404)
        ok("%s %s -> 404 JSON" % (method, path))
    # /metrics takes the API's auth; the console takes a session instead
    r = call(c, "GET", "/metrics", auth=None, want=401, what="unsigned GET /metrics")
    need(r.data == bad, "unsigned GET /metrics: bad token", r)
    r = call(c, "GET", "/ui/jobs/x?page=2", auth=None, want=303, what="unsigned GET /ui/jobs/x")
    need(r.headers.get("Location") == "/ui/login?next=/ui/jobs/x%3Fpage%3D2",
         "unsigned GET /ui/...: to the sign-in form with next", r)
    r = call(c, "GET", "/ui/jobs/x", want=303, what="signed GET /ui/jobs/x")
    need(r.headers.get("Location", "").startswith("/ui/login"),
         "the console does not take API signatures either", r)
    r = call(c, "GET", "/metrics")
    need(isinstance(r.data, Text) and "pbatch_batches_in_flight" in r.data
         and r.headers.get("Content-Type", "").startswith("application/openmetrics-text"),
         "signed GET /metrics: OpenMetrics text", r)
    ok("/metrics unsigned -> 401, signed -> 200 text; /ui/ without a session -> the sign-in form")


# ------------------------------------------------------------ concurrency ---

def concurrency(args):
    c = Client(args.url, args.ak, args.sk)
    n, failures, lock = args.clients, [], threading.Lock()
    barrier = threading.Barrier(n)

    def run_all(step):
        def worker(i):
            try:
                barrier.wait(timeout=30)
                step(i)
            except Exception as e:  # Failure, or a transport error
                with lock:
                    failures.append("client %d: %s" % (i, e))
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        need(not failures, "%d of %d clients failed:\n" % (len(failures), n) + "\n".join(failures[:5]))

    def create_and_read(i):
        name = "v_%d" % i
        r = call(c, "POST", "/v2/variables/" + name,
                 {"name": name, "type": "string", "value": "x%d" % i, "format": ""})
        need(not isinstance(r.data, Text) or r.data == "", "create %s: empty or JSON body" % name, r)
        r = call(c, "GET", "/v2/variables/" + name)
        need(isinstance(r.data, dict) and r.data.get("name") == name and r.data.get("type") == "string"
             and r.data.get("value") == "x%d" % i, "read back %s" % name, r)

    def delete(i):
        r = call(c, "DELETE", "/v2/variables/v_%d" % i)
        need(not isinstance(r.data, Text) or r.data == "", "delete v_%d: empty or JSON body" % i, r)

    def listed():
        r = call(c, "GET", "/v2/variables?type=user")
        vs = r.data.get("variables") if isinstance(r.data, dict) else None
        need(isinstance(vs, list) and all(isinstance(v, dict) for v in vs), "list user variables", r)
        return {v.get("name") for v in vs}

    wanted = {"v_%d" % i for i in range(n)}
    run_all(create_and_read)
    ok("%d concurrent clients created and read back their variables" % n)
    missing = wanted - listed()
    need(not missing, "list ?type=user misses %s" % sorted(missing))
    ok("GET /v2/variables?type=user lists all %d" % n)
    run_all(delete)
    left = wanted & listed()
    need(not left, "variables still listed after delete: %s" % sorted(left))
    ok("%d concurrent deletes (body {\"name\":...}, no Content-Type)" % n)


# ------------------------------------------------------------------- main ---

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="scenario", required=True)
    sub.add_parser("selftest", help="check the signer against the §2 test vectors")
    for name, fn in (("lifecycle", lifecycle), ("errors", errors), ("concurrency", concurrency)):
        s = sub.add_parser(name)
        s.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080")
        s.add_argument("--ak", required=True)
        s.add_argument("--sk", required=True)
        s.set_defaults(fn=fn)
        if name == "lifecycle":
            s.add_argument("--data-dir", required=True, help="the server's data dir")
            s.add_argument("--key-prefix", default="x/$(year)/",
                           help="export keyPrefix; a manual job's keyPrefix is the file name")
            s.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
        if name == "concurrency":
            s.add_argument("--clients", type=int, default=50)
    args = p.parse_args()
    try:
        (selftest if args.scenario == "selftest" else args.fn)(args)
    except Failure as e:
        print(e, file=sys.stderr)
        return 1
    except (OSError, http.client.HTTPException) as e:
        print("FAIL transport error: %r" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
