"""An HTTP server whose health flips on command: the harness's real backend for http-probe.

Serves every GET on 127.0.0.1 (a free port, printed first as ``port N``) with 200 while
up and 503 while down (``--down`` starts it down). Commands on stdin, one per line, each
answered with one line on stdout:

* ``up`` / ``down``: flip; answers ``ok``;
* ``stats``: a JSON object: requests answered since the last ``stats`` (``ok``,
  ``unavailable``), and the last request's ``path`` and ``host``;
* ``quit`` (or end of stdin): stops.
"""

import http.server
import json
import sys
import threading


class State:
    def __init__(self, up: bool) -> None:
        self.lock = threading.Lock()
        self.up = up
        self.ok = 0
        self.unavailable = 0
        self.path = ""
        self.host = ""


STATE = State(up="--down" not in sys.argv)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        with STATE.lock:
            up = STATE.up
            if up:
                STATE.ok += 1
            else:
                STATE.unavailable += 1
            STATE.path = self.path
            STATE.host = self.headers.get("Host", "")
        body = b"ok\n" if up else b"unavailable\n"
        self.send_response(200 if up else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command in ("up", "down"):
            with STATE.lock:
                STATE.up = command == "up"
            print("ok", flush=True)
        elif command == "stats":
            with STATE.lock:
                stats = {"ok": STATE.ok, "unavailable": STATE.unavailable,
                         "path": STATE.path, "host": STATE.host}
                STATE.ok = STATE.unavailable = 0
            print(json.dumps(stats), flush=True)
        elif command == "quit":
            break
    server.shutdown()


if __name__ == "__main__":
    main()
