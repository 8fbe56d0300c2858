"""Real HTTP/1.1 backends on 127.0.0.1 for the integration tests (keep-alive, a thread per
connection), and a self-signed certificate for the TLS ones.

Each backend answers:

* ``GET /`` (and any other path) and ``POST /``: 200, body ``server=<i> host=<Host header>``;
* ``/fail``: 503 (any method);
* ``/hang``: nothing until the backend is killed (or 30 s);

and counts the requests it got. ``kill()`` makes it vanish like a crashed process: the
port is closed (connects are refused) and open connections are reset.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path
from typing import List, Optional, Set, Tuple


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: the head and the body leave in one write, when the request is handled (two
    # small writes would wait on the client's delayed ACK).
    wbufsize = 1 << 16
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.backend.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.backend.closed(self.connection)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        backend = self.server.backend
        with backend.lock:
            backend.hits += 1
            backend.hosts.add(self.headers.get("Host") or "")
        if self.path.startswith("/hang"):
            backend.killed.wait(30)
            return
        code = 503 if self.path.startswith("/fail") else 200
        body = f"server={backend.index} host={self.headers.get('Host')}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    backend: "Backend"


class Backend:
    """One HTTP server on 127.0.0.1 (see the module docs); ``tls``: the certificate and
    key to serve HTTPS with (the SNI names it saw are in ``server_names``)."""

    def __init__(self, index: int, tls: Optional[Tuple[Path, Path]] = None) -> None:
        self.index = index
        self.hits = 0
        self.hosts: Set[str] = set()
        self.server_names: Set[str] = set()
        self.lock = threading.Lock()
        self.killed = threading.Event()
        self._connections: Set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.backend = self
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = self._sni
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _sni(self, sock: ssl.SSLObject, name: Optional[str], ctx: ssl.SSLContext) -> None:
        with self.lock:
            self.server_names.add(name or "")

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.port}"

    def opened(self, conn: socket.socket) -> None:
        with self.lock:
            self._connections.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self.lock:
            self._connections.discard(conn)

    def kill(self) -> None:
        """Closes the port and resets every open connection."""
        if self.killed.is_set():
            return
        self.killed.set()
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass
        self._thread.join(10)


def start(n: int, tls: Optional[Tuple[Path, Path]] = None) -> List[Backend]:
    return [Backend(i, tls) for i in range(n)]


def total_hits(backends: List[Backend]) -> int:
    return sum(b.hits for b in backends)


def self_signed(directory: Path, name: str) -> "tuple[Path, Path]":
    """A certificate for ``name`` (and its key), made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    return cert, key
