#!/usr/bin/python3
"""The HTTP side of bench/soak.sh, and its minute-by-minute sampler.

Runs for MINUTES: sendsms requests (with a dlr-url to a recording server
it serves itself), /router/receive requests, and a console reader (logged
in as a console user, reading the log page, a search and /router/stats),
each at a steady rate on its own thread, timing every request (client
side: from sending the request to the last byte of the answer). Every
minute it prints one row: the rapidbox process's RSS and open files, the
store file's size, the bearerbox's MO and MT counts, the requests of the
minute and their p50/p99 latency per kind.

    soak_load.py MINUTES HTTP_PORT ADMIN_PORT RAPIDBOX_PID STORE CALLBACK_PORT

At the end it prints `TOTALS key=value ...` (requests made, answered
well, failed; callbacks received), which soak.sh compares with the store.
Standard library only: Debian's python3 as it comes.
"""

import http.client
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse

MINUTES, HTTP_PORT, ADMIN_PORT, PID, STORE, CB_PORT = sys.argv[1:7]
MINUTES = float(MINUTES)
HTTP_PORT, ADMIN_PORT, CB_PORT = int(HTTP_PORT), int(ADMIN_PORT), int(CB_PORT)

# Requests per second of each kind (environment overrides).
SENDSMS_RATE = float(os.environ.get("SOAK_SENDSMS_RATE", "20"))
RECEIVE_RATE = float(os.environ.get("SOAK_RECEIVE_RATE", "20"))
CONSOLE_RATE = float(os.environ.get("SOAK_CONSOLE_RATE", "2"))
CONSOLE_USER = os.environ.get("SOAK_CONSOLE_USER", "soak")
CONSOLE_PASSWORD = os.environ.get("SOAK_CONSOLE_PASSWORD", "soak-password")

lock = threading.Lock()
latencies = {"sendsms": [], "receive": [], "console": []}
totals = {"sendsms_ok": 0, "sendsms_failed": 0, "receive_ok": 0,
          "receive_failed": 0, "console_ok": 0, "console_failed": 0,
          "callbacks": 0}
stop = threading.Event()


def record(kind, seconds, ok):
    with lock:
        latencies[kind].append(seconds)
        totals[kind + ("_ok" if ok else "_failed")] += 1


class Callbacks(http.server.BaseHTTPRequestHandler):
    """The dlr-url target: counts every call."""

    def do_GET(self):
        with lock:
            totals["callbacks"] += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def request(conn, method, path, body=None, headers=None):
    """One request on a keep-alive connection; (status, body, headers)."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data, response


def paced(rate, kind, one):
    """Calls one(conn, n) `rate` times a second until stopped, timing each."""
    if rate <= 0:
        return
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
    period = 1.0 / rate
    next_at = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        try:
            ok = one(conn, n)
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=30)
        record(kind, time.monotonic() - started, ok)
        next_at += period
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()


def sendsms(conn, n):
    dlr = "http://127.0.0.1:%d/dlr?n=%d&d=%%d" % (CB_PORT, n)
    query = urllib.parse.urlencode({
        "username": "soak", "password": "soak", "from": "5555",
        "to": "+2567%08d" % n,
        "text": "soak sendsms %d" % n, "smsc": "fake", "dlr-mask": "3",
        "dlr-url": dlr})
    status, _, _ = request(conn, "GET", "/cgi-bin/sendsms?" + query)
    return status == 202


def receive(conn, n):
    query = urllib.parse.urlencode({
        "backend": "fake", "sender": "+2568%08d" % n,
        "message": "soak receive %d" % n})
    status, _, _ = request(conn, "GET", "/router/receive?" + query)
    return status == 200


class Console:
    """A logged-in console user reading pages."""

    PAGES = ["/router/console", "/router/console?q=soak", "/router/stats"]

    def __init__(self):
        self.cookie = None

    def login(self, conn):
        status, body, response = request(conn, "GET", "/router/console/login")
        login_cookie = None
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("rapidbox_login="):
                login_cookie = value.split(";")[0]
        token = re.search(rb'name="csrf" value="([^"]+)"', body)
        if status != 200 or not login_cookie or not token:
            return False
        form = urllib.parse.urlencode({
            "username": CONSOLE_USER, "password": CONSOLE_PASSWORD,
            "csrf": token.group(1).decode()})
        status, _, response = request(
            conn, "POST", "/router/console/login", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Cookie": login_cookie})
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("rapidbox_session="):
                self.cookie = value.split(";")[0]
        return status in (302, 303) and self.cookie is not None

    def __call__(self, conn, n):
        if self.cookie is None and not self.login(conn):
            return False
        path = self.PAGES[n % len(self.PAGES)]
        status, _, _ = request(conn, "GET", path, headers={"Cookie": self.cookie})
        if status in (302, 303):
            self.cookie = None
        return status == 200


def proc_kib(key):
    try:
        with open("/proc/%s/status" % PID) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def open_files():
    try:
        return len(os.listdir("/proc/%s/fd" % PID))
    except OSError:
        return -1


def bearerbox_counts():
    """(MOs received, MTs sent) from the bearerbox's status page."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=10)
        _, body, _ = request(conn, "GET", "/status.txt?password=bench")
        conn.close()
        m = re.search(rb"SMS: received (\d+) \(\d+ queued\), sent (\d+)", body)
        return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    except (OSError, http.client.HTTPException):
        return (-1, -1)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", CB_PORT), Callbacks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workers = [
        threading.Thread(target=paced, args=(SENDSMS_RATE, "sendsms", sendsms)),
        threading.Thread(target=paced, args=(RECEIVE_RATE, "receive", receive)),
        threading.Thread(target=paced, args=(CONSOLE_RATE, "console", Console())),
    ]
    for w in workers:
        w.start()
    print("minute\trss_mb\tfds\tstore_mb\tmo_in\tmt_out"
          "\tsendsms\tp50_ms\tp99_ms\treceive\tp50_ms\tp99_ms"
          "\tconsole\tp50_ms\tp99_ms\tfailed", flush=True)
    started = time.monotonic()
    minute = 0
    while minute < MINUTES:
        minute += 1
        time.sleep(max(0, started + 60 * minute - time.monotonic()))
        with lock:
            window = {k: v[:] for k, v in latencies.items()}
            for v in latencies.values():
                v.clear()
            failed = totals["sendsms_failed"] + totals["receive_failed"] + totals["console_failed"]
        mo_in, mt_out = bearerbox_counts()
        try:
            store_mb = os.path.getsize(STORE) / 1e6
        except OSError:
            store_mb = float("nan")
        row = [minute, "%.1f" % (proc_kib("VmRSS:") / 1024), open_files(),
               "%.1f" % store_mb, mo_in, mt_out]
        for kind in ("sendsms", "receive", "console"):
            row += [len(window[kind]), "%.1f" % pct(window[kind], 0.5),
                    "%.1f" % pct(window[kind], 0.99)]
        row.append(failed)
        print("\t".join(str(x) for x in row), flush=True)
    stop.set()
    for w in workers:
        w.join()
    # Callbacks for the last sendsms requests come a little later.
    time.sleep(float(os.environ.get("SOAK_CALLBACK_GRACE", "15")))
    with lock:
        print("TOTALS " + " ".join("%s=%d" % kv for kv in sorted(totals.items())),
              flush=True)
    print("PEAK_RSS_MB %.1f" % (proc_kib("VmHWM:") / 1024), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
