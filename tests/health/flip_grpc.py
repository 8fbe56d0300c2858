"""A gRPC server with the standard health service (grpcio-health-checking) whose status
flips on command: the harness's real backend for grpc-health.

Listens on 127.0.0.1 (a free port, printed first as ``port N``) and serves
``grpc.health.v1.Health`` with the service ``peerlb.test`` (and the server as a whole,
``""``) SERVING, or NOT_SERVING with ``--down``. Commands on stdin, one per line, each
answered with one line on stdout:

* ``up`` / ``down``: set SERVING / NOT_SERVING for both; answers ``ok``;
* ``stats``: a JSON object with the Check calls since the last ``stats`` (``checks``);
* ``quit`` (or end of stdin): stops.
"""

import json
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "peerlb.test"


class CountingHealth(health.HealthServicer):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.checks = 0

    def Check(self, request, context):  # noqa: N802 (gRPC's naming)
        with self.lock:
            self.checks += 1
        return super().Check(request, context)


def main() -> None:
    servicer = CountingHealth()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    status = (health_pb2.HealthCheckResponse.NOT_SERVING if "--down" in sys.argv
              else health_pb2.HealthCheckResponse.SERVING)
    for name in ("", SERVICE):
        servicer.set(name, status)
    server.start()
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command in ("up", "down"):
            status = (health_pb2.HealthCheckResponse.SERVING if command == "up"
                      else health_pb2.HealthCheckResponse.NOT_SERVING)
            for name in ("", SERVICE):
                servicer.set(name, status)
            print("ok", flush=True)
        elif command == "stats":
            with servicer.lock:
                stats = {"checks": servicer.checks}
                servicer.checks = 0
            print(json.dumps(stats), flush=True)
        elif command == "quit":
            break
    server.stop(grace=None)


if __name__ == "__main__":
    main()
