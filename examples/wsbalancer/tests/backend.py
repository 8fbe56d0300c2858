"""A WebSocket backend for the wsbalancer tests, on the `websockets` library: it speaks
the balancer's relay protocol (see examples/wsbalancer/src/protocol.rs) and echoes.

Each message ``{"seq": N, "data": ...}`` is answered with ``{"ack": N, "data": ...}`` in one
frame; a JSON object gets ``"backend": <name>`` added. ``{"cmd": "close"}`` makes it close
normally (1000). With ``--decline STATUS`` it refuses every handshake with that HTTP status.
It appends one line per event to ``--log``: ``open <session> <resume>``, ``seq <N>``,
``closed <code>``. It prints ``listening <host:port>`` once ready.

    python backend.py --name b1 --log /tmp/b1.log [--decline 401]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Optional

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--decline", type=int, default=None)
    args = parser.parse_args()
    log = open(args.log, "a", buffering=1)

    def process_request(connection: ServerConnection, request: Request) -> Optional[Response]:
        if args.decline is not None:
            return connection.respond(args.decline, "declined by the test backend\n")
        return None

    async def handle(ws: ServerConnection) -> None:
        headers = ws.request.headers if ws.request else {}
        log.write(f"open {headers.get('X-Peerlb-Session')} {headers.get('X-Peerlb-Resume')}\n")
        try:
            async for frame in ws:
                message: Any = json.loads(frame)
                seq = message["seq"]
                log.write(f"seq {seq}\n")
                data = message.get("data")
                try:
                    body = json.loads(data) if isinstance(data, str) else None
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("cmd") == "close":
                    await ws.send(json.dumps({"ack": seq}))
                    await ws.close(1000, "asked to close")
                    break
                if isinstance(body, dict):
                    body["backend"] = args.name
                    data = json.dumps(body)
                reply = {"ack": seq}
                if data is not None:
                    reply["data"] = data
                else:
                    reply["data_b64"] = message.get("data_b64", "")
                await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        log.write(f"closed {ws.close_code}\n")

    async def run() -> None:
        async with serve(handle, "127.0.0.1", 0, process_request=process_request) as server:
            host, port = next(iter(server.sockets)).getsockname()[:2]
            print(f"listening {host}:{port}", flush=True)
            await asyncio.get_running_loop().create_future()

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
