"""The soak's Python surface: a peerlb.PeerList fed by the file and DNS updaters, client
threads sending HTTP requests through ``lst.retry`` at a steady rate, and the harness's
commands read as JSON lines on stdin (replies on stdout). See soak/README.md.

    python driver.py '<config JSON>'
"""

import http.client
import json
import sys
import threading
import time

import peerlb

config = json.loads(sys.argv[1])
log_file = open(config["log"], "w", buffering=1 << 16)
log_lock = threading.Lock()
problems = []
counters = {"requests": 0, "ok": 0, "caller_errors": 0, "expected_errors": 0, "inflight": 0}
counters_lock = threading.Lock()
thrown = 0
quitting = threading.Event()
# When the harness stopped the list (and when it started it again): not-started errors
# then are expected.
stopped = {"since": None, "started": 0.0}


def problem(text):
    if len(problems) < 20:
        problems.append(text)


def log(line):
    with log_lock:
        log_file.write(line + "\n")


def now_ms():
    return int(time.time() * 1000)


def thread_died(args):
    problem(f"a thread raised {args.exc_type.__name__}: {args.exc_value}")


threading.excepthook = thread_died


def unraisable(args):
    # Exceptions from subscribers are reported here (the list skips the subscriber for
    # that event); the throwing one is on purpose, anything else is a problem.
    global thrown
    if isinstance(args.exc_value, RuntimeError) and "on purpose" in str(args.exc_value):
        thrown += 1
    else:
        problem(f"unraisable: {args.exc_type.__name__}: {args.exc_value}")


sys.unraisablehook = unraisable

ejection = config["ejection"]
lst = peerlb.PeerList(
    config["strategy"],
    ejection={
        "failures": ejection["failures"],
        "base_ms": ejection["base_ms"],
        "max_ms": ejection["max_ms"],
        "max_percent": ejection["max_percent"],
        "panic_percent": ejection["panic_percent"],
    },
)


def on_event(e):
    log(f"E {now_ms()} {e.kind} {e.peer}")


events = lst.subscribe(on_event)
throwing = None

file_binding = peerlb.FileUpdater(
    config["file"], poll_interval=config["file_poll_ms"] / 1000
).bind(lst)
dns_binding = peerlb.DnsUpdater(
    config["dns_name"],
    "srv",
    nameserver=config["dns"],
    min_interval=config["dns_min_interval_ms"] / 1000,
    max_interval=1.0,
    timeout=0.5,
    empty_threshold=config["dns_empty_threshold"],
).bind(lst)
lst.start()
file_binding.start()
dns_binding.start()


class Client:
    """Keep-alive HTTP connections per peer; a request gets a 200 or raises."""

    def __init__(self):
        self.connections = {}

    def _request(self, peer):
        conn = self.connections.get(peer)
        fresh = conn is None
        if fresh:
            host, port = peer.rsplit(":", 1)
            conn = http.client.HTTPConnection(
                host, int(port), timeout=config["request_timeout_ms"] / 1000
            )
            self.connections[peer] = conn
        try:
            conn.request("GET", "/", headers={"Host": "soak"})
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            self.connections.pop(peer, None)
            if fresh:
                raise
            # A kept-alive connection the backend closed meanwhile: once more, anew.
            return self._request(peer)

    def get(self, peer):
        t = now_ms()
        try:
            status = self._request(peer)
        except Exception:
            log(f"A {t} {peer} fail")
            raise
        log(f"A {t} {peer} {'ok' if status == 200 else 'fail'}")
        if status != 200:
            raise RuntimeError(f"{peer} answered {status}")


def worker(index):
    interval = 1.0 / config["rate"]
    client = Client()
    next_at = time.monotonic() + interval * index / 4
    while not quitting.is_set():
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at += interval
        if next_at + interval * 10 < time.monotonic():
            next_at = time.monotonic()
        with counters_lock:
            counters["requests"] += 1
            counters["inflight"] += 1
        try:
            lst.retry(
                client.get,
                max_attempts=config["max_attempts"],
                timeout=config["retry_timeout_ms"] / 1000,
            )
            outcome = "ok"
        except peerlb.PeerlbError as e:
            recently = stopped["since"] is not None or time.monotonic() - stopped["started"] < 0.2
            if recently and e.code == "not-started":
                outcome = "expected_errors"
            else:
                outcome = "caller_errors"
                problem(f"caller error: {e.code} ({e})")
        except Exception as e:  # anything else reaching the caller is a problem too
            outcome = "caller_errors"
            problem(f"caller error: {type(e).__name__}: {e}")
        with counters_lock:
            counters["inflight"] -= 1
            counters[outcome] += 1


workers = [threading.Thread(target=worker, args=(i,)) for i in range(config["workers"])]
for w in workers:
    w.start()


def report():
    info = lst.introspect()
    with log_lock:
        log_file.flush()
    with counters_lock:
        r = dict(counters)
    r["pending"] = sum(p["pending"] for p in info["peers"])
    r["panic"] = info["panic"]
    r["peers"] = info["total"]
    r["thrown"] = thrown
    r["problems"] = list(problems)
    return r


def throw_on_purpose(_event):
    raise RuntimeError("soak: a subscriber that throws on purpose")


def handle(cmd):
    global throwing
    kind = cmd.get("cmd")
    try:
        if kind == "admin":
            getattr(lst, cmd["action"])(cmd["peer"])
        elif kind == "stop":
            stopped["since"] = time.monotonic()
            lst.stop()
        elif kind == "start":
            lst.start()
            stopped["started"] = time.monotonic()
            stopped["since"] = None
        elif kind == "throwing":
            if cmd["on"]:
                throwing = lst.subscribe(throw_on_purpose)
            elif throwing is not None:
                throwing.cancel()
                throwing = None
        elif kind == "report":
            return report()
        elif kind == "quit":
            quitting.set()
            for w in workers:
                w.join()
            file_binding.stop()
            dns_binding.stop()
            r = report()
            r["final"] = True
            return r
        else:
            return {"ok": False, "error": f"unknown command {kind!r}"}
    except peerlb.PeerlbError as e:
        return {"ok": False, "error": f"{e.code}: {e}"}
    return {"ok": True}


print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    print(json.dumps(handle(cmd)), flush=True)
    if cmd.get("cmd") == "quit":
        break
log_file.close()
