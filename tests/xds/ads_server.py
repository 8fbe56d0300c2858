"""A small xDS control plane for the tests: ADS v3, state of the world, EDS only.

Runs a grpcio server on 127.0.0.1 (``--port``, default a free one), prints ``port N``,
then takes one JSON command per line on stdin and answers each with one JSON line:

``{"op": "set", "version": "v1", "clusters": {"a": [endpoint, ...]}}``
    makes this the state and pushes it to every open stream (every cluster a stream asked
    for, in one response); answers ``{"nonce": "...", "streams": n}`` (the nonce of the
    push, empty when no stream is open). An endpoint is
    ``{"addr": "10.0.0.1", "port": 80, "weight": 3, "health": "HEALTHY",
    "region": "r", "zone": "z", "sub_zone": "s", "priority": 0, "locality_weight": 2}``
    (all but ``addr`` optional; ``"port": null`` or ``"addr": null`` sends no address;
    endpoints with the same locality fields share one ``LocalityLbEndpoints``).
``{"op": "requests"}``
    every DiscoveryRequest received, in order: ``{"version", "nonce", "error", "node_id",
    "node_cluster", "names", "type_url"}`` (``error`` is the NACK's message or null).
``{"op": "quit"}``
    stops the server and exits.

Needs ``grpcio`` and ``xds-protos`` (the Makefile installs both into the repo's venv).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from concurrent import futures

import grpc
from envoy.config.core.v3 import address_pb2, base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, wrappers_pb2

EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
HEALTH = health_check_pb2.HealthStatus


def endpoint(spec: dict) -> endpoint_components_pb2.LbEndpoint:
    lb = endpoint_components_pb2.LbEndpoint()
    ep = lb.endpoint
    if spec.get("addr") is not None and spec.get("port", 80) is not None:
        ep.address.socket_address.address = spec["addr"]
        ep.address.socket_address.port_value = spec.get("port", 80)
    elif spec.get("addr") is not None:
        ep.address.socket_address.address = spec["addr"]
    else:
        ep.SetInParent()
    if "weight" in spec:
        lb.load_balancing_weight.CopyFrom(wrappers_pb2.UInt32Value(value=spec["weight"]))
    lb.health_status = HEALTH.Value(spec.get("health", "UNKNOWN"))
    return lb


def assignment(name: str, endpoints: list) -> any_pb2.Any:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    groups: dict = {}
    for spec in endpoints:
        key = (spec.get("region", ""), spec.get("zone", ""), spec.get("sub_zone", ""),
               spec.get("priority", 0), spec.get("locality_weight"))
        if key not in groups:
            group = cla.endpoints.add()
            group.locality.region, group.locality.zone, group.locality.sub_zone = key[:3]
            group.priority = key[3]
            if key[4] is not None:
                group.load_balancing_weight.CopyFrom(wrappers_pb2.UInt32Value(value=key[4]))
            groups[key] = group
        groups[key].lb_endpoints.append(endpoint(spec))
    packed = any_pb2.Any()
    packed.Pack(cla)
    return packed


class Ads(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = ""
        self.clusters: dict = {}
        self.requests: list = []
        self.streams: list = []  # one queue per open stream
        self.nonce = 0

    def _response(self, names: list) -> discovery_pb2.DiscoveryResponse:
        # Under self.lock.
        self.nonce += 1
        return discovery_pb2.DiscoveryResponse(
            version_info=self.version,
            type_url=EDS,
            nonce=f"n{self.nonce}",
            resources=[assignment(n, self.clusters[n]) for n in names if n in self.clusters],
        )

    def set(self, version: str, clusters: dict) -> dict:
        with self.lock:
            self.version, self.clusters = version, clusters
            nonce = ""
            for stream in self.streams:
                if stream["names"] is not None:
                    response = self._response(stream["names"])
                    nonce = response.nonce
                    stream["queue"].put(response)
            return {"nonce": nonce, "streams": len(self.streams)}

    def StreamAggregatedResources(self, request_iterator, context):  # noqa: N802
        stream = {"queue": queue.Queue(), "names": None}
        with self.lock:
            self.streams.append(stream)

        def read() -> None:
            try:
                for request in request_iterator:
                    with self.lock:
                        self.requests.append({
                            "version": request.version_info,
                            "nonce": request.response_nonce,
                            "error": request.error_detail.message
                            if request.HasField("error_detail") else None,
                            "node_id": request.node.id,
                            "node_cluster": request.node.cluster,
                            "names": list(request.resource_names),
                            "type_url": request.type_url,
                        })
                        names = sorted(request.resource_names)
                        if request.type_url == EDS and names != stream["names"]:
                            stream["names"] = names
                            if self.version:
                                stream["queue"].put(self._response(names))
            except grpc.RpcError:
                pass
            stream["queue"].put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while context.is_active():
                try:
                    response = stream["queue"].get(timeout=0.1)
                except queue.Empty:
                    continue
                if response is None:
                    return
                yield response
        finally:
            with self.lock:
                self.streams.remove(stream)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    ads = Ads()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(ads, server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "set":
            answer = ads.set(command["version"], command["clusters"])
        elif op == "requests":
            with ads.lock:
                answer = list(ads.requests)
        elif op == "quit":
            break
        else:
            answer = {"error": f"unknown op {op!r}"}
        print(json.dumps(answer), flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
