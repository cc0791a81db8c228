#!/usr/bin/env python3
"""Drives pbatch's web console in a real browser (Debian's chromium and
chromium-driver, through selenium), as tests/it/console.rs sets it up:

    console_browser.py --url URL --ak AK --sk SK --data-dir DIR --shots DIR

The server holds the example's datasource, the example job `daily_traffic`
(made manual, so that start runs a batch now; every commit waits 2.5 s, so
a batch is seen Running first), its depend job `domains`, and a manual job
`slow` that runs until stopped. Each step prints `ok <what>`; a failed
check exits 1 with what the page showed. A screenshot of each page goes to
--shots.
"""

import argparse
import http.cookiejar
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pyarrow.parquet as pq
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

CHROMIUM = os.environ.get("PBATCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PBATCH_CHROMEDRIVER", "/usr/bin/chromedriver")


class Check(Exception):
    pass


def ok(what):
    print("ok " + what, flush=True)


def need(cond, what, driver=None):
    if not cond:
        page = ""
        if driver is not None:
            page = "\nat %s:\n%s" % (driver.current_url, driver.find_element(By.TAG_NAME, "body").text[:3000])
        raise Check(what + page)


def wait(driver, cond, what, timeout=60):
    """Polls cond() until it is truthy; the page is never reloaded here."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # an element swapped out mid-read
            last = e
        time.sleep(0.2)
    need(False, "timed out after %ss waiting for %s (last error: %s)" % (timeout, what, last), driver)


def stale(el):
    try:
        el.is_enabled()
        return False
    except StaleElementReferenceException:
        return True


class Console:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.args = args
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--disable-extensions"):
            o.add_argument(a)
        self.d = webdriver.Chrome(options=o, service=Service(CHROMEDRIVER))
        self.d.set_page_load_timeout(30)
        self.shot_n = 0

    def go(self, path):
        self.d.get(self.url + path)

    def shot(self, name):
        self.shot_n += 1
        p = os.path.join(self.args.shots, "%02d-%s.png" % (self.shot_n, name))
        self.d.save_screenshot(p)

    def css(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def one(self, sel):
        els = self.css(sel)
        need(len(els) == 1, "one element %r (found %d)" % (sel, len(els)), self.d)
        return els[0]

    def text(self, sel):
        els = self.css(sel)
        return els[0].text if els else None

    def submit(self, sel):
        """Clicks `sel` (a link or a form's button) and waits until the next
        page has loaded: the old page's root goes stale first."""
        old = self.d.find_element(By.TAG_NAME, "html")
        self.one(sel).click()
        wait(self.d, lambda: stale(old), "the page after clicking " + sel, timeout=30)
        wait(self.d, lambda: self.d.execute_script("return document.readyState") == "complete",
             "the page after clicking %s to load" % sel, timeout=30)

    def mark(self):
        """Marks the window: a reload would lose the mark."""
        self.d.execute_script("window.__pbatchMark = 42; document.body.dataset.polls = '0';")

    def still_marked(self):
        return self.d.execute_script("return window.__pbatchMark") == 42

    def polls(self):
        return int(self.d.execute_script("return document.body.dataset.polls || '0'"))

    def quit(self):
        self.d.quit()


def post(url, fields, cookie=None, origin=None):
    """A form POST outside the browser: (status, body)."""
    body = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookie:
        req.add_header("Cookie", cookie)
    if origin:
        req.add_header("Origin", origin)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def login_next(url):
    """The `next` of a sign-in form's URL (None when it is not the form)."""
    u = urllib.parse.urlsplit(url)
    if u.path != "/ui/login":
        return None
    return urllib.parse.parse_qs(u.query).get("next", [None])[0]


def sign_in(c):
    a = c.args
    c.go("/ui/")
    need(login_next(c.d.current_url) == "/ui/", "an unsigned visit goes to the sign-in form with next=/ui/", c.d)
    c.shot("sign-in")
    c.one("#ak").send_keys(a.ak)
    c.one("#sk").send_keys("not-the-secret")
    c.submit("#signin")
    wait(c.d, lambda: "does not match" in (c.text("#login-error") or ""), "a wrong secret refused on the form")
    need(c.d.get_cookie("pbatch_ui") is None, "a refused sign-in sets no cookie")
    ok("a wrong secret key is refused; no cookie")
    c.one("#ak").clear()
    c.one("#ak").send_keys(a.ak)
    c.one("#sk").send_keys(a.sk)
    c.submit("#signin")
    wait(c.d, lambda: c.d.current_url.endswith("/ui/"), "the jobs page after sign-in")
    need(c.text("#who") == a.ak, "the header names the access key", c.d)
    ck = c.d.get_cookie("pbatch_ui")
    need(ck is not None and ck.get("httpOnly") is True and ck.get("sameSite") == "Strict"
         and ck.get("path") == "/ui", "the session cookie is HttpOnly, SameSite=Strict, Path=/ui: %r" % (ck,))
    need(c.d.execute_script("return document.cookie").find("pbatch_ui") < 0,
         "page scripts cannot read the session cookie")
    ok("signed in; cookie HttpOnly SameSite=Strict")
    return "pbatch_ui=" + ck["value"]


def csrf_and_origin(c, cookie):
    start = c.url + "/ui/jobs/slow/start"
    token = c.one("#start-job-slow").find_element(By.XPATH, "..").find_element(
        By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    s, body = post(start, {"back": "/ui/"}, cookie=cookie)
    need(s == 422 or s == 400 or s == 403, "a POST without a CSRF token is refused (got %s)" % s)
    s, body = post(start, {"csrf": "forged", "back": "/ui/"}, cookie=cookie)
    need(s == 403 and "CSRF" in body, "a POST with a forged CSRF token is 403 (got %s %s)" % (s, body[:200]))
    s, body = post(start, {"csrf": token, "back": "/ui/"}, cookie=cookie, origin="http://evil.example")
    need(s == 403 and "evil.example" in body, "a POST from another origin is 403 (got %s)" % s)
    s, body = post(start, {"csrf": token, "back": "/ui/"})
    need(s == 403, "a POST without the session is 403 (got %s)" % s)
    # the API is unchanged: no session cookie makes it answer
    req = urllib.request.Request(c.url + "/v2/jobs", headers={"Cookie": cookie})
    try:
        urllib.request.urlopen(req, timeout=30)
        need(False, "the API answered an unsigned request that carried the console's cookie")
    except urllib.error.HTTPError as e:
        need(e.code == 401, "the API refuses the console's cookie with 401 (got %s)" % e.code)
    ok("CSRF: missing/forged token, foreign Origin, no session -> refused; the API ignores the cookie")


def start_and_watch(c):
    c.go("/ui/")
    row = c.one("#job-daily_traffic")
    need(row.find_element(By.CSS_SELECTOR, "td.state").text == "stopped", "daily_traffic starts stopped", c.d)
    need(not c.css("#job-daily_traffic .cell"), "daily_traffic has no batches yet", c.d)
    # the depend job first, so that it runs after its upstream's batch
    c.submit("#start-job-domains")
    wait(c.d, lambda: c.one("#job-domains td.state").text == "started", "domains started")
    c.submit("#start-job-daily_traffic")
    wait(c.d, lambda: c.css("#job-daily_traffic .cell"), "daily_traffic's first cell")
    first = c.one("#job-daily_traffic .cell").get_attribute("data-status")
    need(first in ("Ready", "Running"), "the batch is seen in flight first (got %s)" % first, c.d)
    c.mark()
    c.shot("jobs-running")
    wait(c.d, lambda: c.one("#job-daily_traffic .cell").get_attribute("data-status") == "Successful",
         "the cell to turn Successful")
    need(c.still_marked(), "the cell turned without a reload")
    need(c.polls() >= 1, "the page polled (%d)" % c.polls())
    colour = c.one("#job-daily_traffic .cell").value_of_css_property("background-color")
    need(colour in ("rgba(51, 170, 51, 1)", "rgb(51, 170, 51)"), "the cell is green (got %s)" % colour)
    ok("started daily_traffic from the jobs page; its cell went %s -> green without a reload" % first)
    c.shot("jobs")


def run_page(c):
    c.submit("#job-daily_traffic .cell")
    wait(c.d, lambda: c.d.current_url.endswith("/ui/jobs/daily_traffic/runs/1"), "the run page")
    need(c.text("#status") == "Successful", "the run page says Successful", c.d)
    need(c.text("#rows-in") == str(c.args.rows), "rows in = %d" % c.args.rows, c.d)
    need(c.text("#placement") == "local", "the run page says where the batch ran", c.d)
    keys = [e.text for e in c.css("#exports .key")]
    need(len(keys) == 1 and re.fullmatch(r"daily_traffic/\d{4}-\d{2}-\d{2}/part-00000\.parquet", keys[0]),
         "one committed key daily_traffic/<date>/part-00000.parquet (got %r)" % keys, c.d)
    path = os.path.join(c.args.data_dir, "buckets", "reports", keys[0])
    table = pq.read_table(path)
    need(c.text("#rows-out") == str(table.num_rows),
         "rows out %s = the committed file's %d rows (pyarrow)" % (c.text("#rows-out"), table.num_rows), c.d)
    need(sum(table.column("requests").to_pylist()) == c.args.rows, "the file's requests sum to the rows read")
    need("committed" in c.text(".log"), "the run's log is shown", c.d)
    need([e.text.split("\n")[0] for e in c.css("#timeline .step")] == ["Ready", "Running", "Successful"],
         "the timeline is Ready -> Running -> Successful", c.d)
    c.shot("run")
    ok("run page: rows in %d, rows out %d = pyarrow's, key %s" % (c.args.rows, table.num_rows, keys[0]))

    c.mark()
    c.submit("#rerun-1")
    wait(c.d, lambda: c.d.current_url.endswith("/ui/jobs/daily_traffic/runs/1"), "back on the run page")
    c.mark()
    wait(c.d, lambda: c.text("#reruns") == "1" and c.text("#status") == "Successful",
         "rerunCount 1 and Successful")
    need(c.still_marked(), "the rerun's end was seen without a reload")
    need("Running (rerun 1)" in c.text("#timeline"), "the timeline names the rerun", c.d)
    ok("rerun from the run page: rerunCount 1, Successful")


def stop_long(c):
    c.go("/ui/")
    c.submit("#start-job-slow")
    c.go("/ui/jobs/slow")
    c.mark()
    wait(c.d, lambda: c.text("#run-1 td.status") == "Running", "slow's batch Running")
    c.shot("job-running")
    c.submit("#stop-1")
    wait(c.d, lambda: c.d.current_url.startswith(c.url + "/ui/jobs/slow"), "back on the job page")
    c.mark()
    wait(c.d, lambda: c.text("#run-1 td.status") == "Canceled", "slow's batch Canceled", timeout=30)
    need(c.css("#rerun-1"), "a Canceled batch offers rerun", c.d)
    c.shot("job-canceled")
    ok("stopped a long batch from the job page: Canceled")
    # the history filter
    sel = c.one("#filter select[name=status]")
    for o in sel.find_elements(By.TAG_NAME, "option"):
        if o.get_attribute("value") == "Successful":
            o.click()
    c.submit("#filter button")
    wait(c.d, lambda: "status=Successful" in c.d.current_url, "the filtered page")
    need(not c.css("#run-1"), "the Successful filter hides the Canceled batch", c.d)
    ok("history filter by status")


def graph(c):
    c.go("/ui/graph")
    edges = c.css('path.edge-depend[data-from="job:daily_traffic"][data-to="job:domains"]')
    need(len(edges) == 1, "a depend edge daily_traffic -> domains", c.d)
    need(c.css('path.edge[data-from="datasource:cdn_logs"][data-to="job:daily_traffic"]'),
         "an edge cdn_logs -> daily_traffic", c.d)
    need(c.css('path.edge[data-from="job:daily_traffic"][data-to="export:daily_traffic/daily_parquet"]'),
         "an edge daily_traffic -> its export", c.d)
    node = c.one('a[data-node="job:daily_traffic"]')
    need(node.get_attribute("data-status") == "Successful", "daily_traffic's node has its last status", c.d)
    c.shot("graph")
    target = edges[0].get_attribute("data-to")
    c.submit('a[data-node="%s"]' % target)
    wait(c.d, lambda: c.d.current_url.endswith("/ui/jobs/domains"), "the depend job's page")
    need(c.text("h2").startswith("Job domains"), "the depend job's page", c.d)
    wait(c.d, lambda: c.text("#run-1 td.status") == "Successful", "the depend job ran after its upstream")
    need("daily_traffic" in c.text("#srcs"), "its src is the upstream job", c.d)
    c.shot("job-depend")
    ok("graph: followed the depend edge daily_traffic -> domains; domains ran once")


def lists(c):
    c.go("/ui/datasources")
    ds = c.one("#ds-cdn_logs")
    need("ts" in ds.text and "date" in ds.text and "cdn-logs" in ds.text, "the datasource with bucket and schema", c.d)
    c.shot("datasources")
    c.go("/ui/variables")
    today = c.text("#var-date td.now")
    need(today and re.fullmatch(r"\d{4}-\d{2}-\d{2}", today), "$(date) has a value now (got %r)" % today, c.d)
    need(c.text("#var-window td.now") and c.text("#var-window td.kind") == "user",
         "the user variable window has its value now", c.d)
    c.shot("variables")
    ok("datasources (schema) and variables (values now): $(date) = " + today)


def sign_out(c):
    c.go("/ui/")
    c.submit("#signout")
    wait(c.d, lambda: "/ui/login" in c.d.current_url, "the sign-in form after sign-out")
    need(c.d.get_cookie("pbatch_ui") is None, "sign-out clears the cookie")
    c.go("/ui/jobs/daily_traffic?page=2")
    need(login_next(c.d.current_url) == "/ui/jobs/daily_traffic?page=2",
         "after sign-out a page goes to the form again, keeping where it was", c.d)
    ok("signed out")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ak", required=True)
    p.add_argument("--sk", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--readme-shot", help="also save the jobs page here (docs/console.png)")
    args = p.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    c = Console(args)
    try:
        cookie = sign_in(c)
        csrf_and_origin(c, cookie)
        start_and_watch(c)
        run_page(c)
        stop_long(c)
        graph(c)
        lists(c)
        if args.readme_shot:
            c.go("/ui/")
            c.d.set_window_size(1000, 420)
            c.d.save_screenshot(args.readme_shot)
            c.d.set_window_size(1280, 900)
        sign_out(c)
    except Check as e:
        try:
            c.shot("failed")
        except Exception:
            pass
        print("FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        c.quit()
    print("screenshots in " + args.shots)


if __name__ == "__main__":
    main()
