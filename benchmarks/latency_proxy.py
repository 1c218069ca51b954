"""A TCP proxy on 127.0.0.1 that puts a network's round-trip time between a client and a server.

    uv run python benchmarks/latency_proxy.py --target 127.0.0.1:5050 --rtt-ms 50

Every byte is forwarded half a round trip late in each direction, so a request and its response cost
one round trip more than they do on the same machine, whatever their size. A new connection waits one
round trip before its first byte moves, as a TCP handshake does over a real network; a TLS handshake is
not modelled. Bandwidth is not limited: the question here is how many round trips the client waits for,
not how fast the network is.

Prints `listening on 127.0.0.1:<port>` once ready and serves until killed or `--max-seconds` have passed,
so a forgotten proxy never outlives the benchmark that started it. Stdlib only (asyncio).

The client keeps using the server's own URL: `route_connections` makes its connections to the server
open at the proxy instead, below HTTP. URLs, `Host` headers and the identity token's audience (which
names the server the client means) stay exactly what they are without the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

_CHUNK_BYTES = 256 * 1024
# Data a direction holds while it waits out the delay. Generous, so only a sender far faster than the
# link's delay ever waits: the proxy models latency, not a narrow pipe.
_QUEUED_CHUNKS = 256


@dataclass(frozen=True)
class Target:
    host: str
    port: int


async def _read_into(reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]], delay: float) -> None:
    """Stamp every chunk with the time it may leave; an empty chunk marks the end of the stream."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(_CHUNK_BYTES)
            await queue.put((loop.time() + delay, data))
            if not data:
                return
    except (ConnectionError, OSError):
        await queue.put((loop.time() + delay, b""))


async def _write_from(writer: asyncio.StreamWriter, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
    """Forward each chunk once its time has come, in order; close the write side at the end."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        return


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """One direction. If the far side stops taking data, the reader is cancelled rather than left
    waiting on a full queue."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=_QUEUED_CHUNKS)
    reading = asyncio.create_task(_read_into(reader, queue, delay))
    try:
        await _write_from(writer, queue)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


async def _serve_connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target: Target, one_way: float
) -> None:
    try:
        await asyncio.sleep(2 * one_way)  # the handshake's round trip
        server_reader, server_writer = await asyncio.open_connection(target.host, target.port)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, server_writer, one_way),
            _pipe(server_reader, client_writer, one_way),
        )
    finally:
        for writer in (client_writer, server_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def serve(target: Target, rtt_ms: float, *, port: int = 0, max_seconds: float) -> None:
    """Listen on 127.0.0.1:`port` (0: any free port) and relay to `target` with `rtt_ms` of round trip."""
    one_way = rtt_ms / 2000.0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(reader, writer, target, one_way)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    deadline = time.monotonic() + max_seconds
    async with server:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def route_connections(server: Target, via: Target) -> None:
    """In this process, open every `urllib3` connection (what `requests`, hence MLflow's client, uses)
    to `server` at `via` instead. Connections to anything else are left alone."""
    from urllib3.util import connection

    original = connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        if (host, int(port)) == (server.host, server.port):
            address = (via.host, via.port)
        return original(address, *args, **kwargs)

    connection.create_connection = create_connection


def parse_target(value: str) -> Target:
    host, _, port = value.rpartition(":")
    return Target(host or "127.0.0.1", int(port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=parse_target, required=True, help="host:port of the server")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round-trip time to add, in milliseconds")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long (default 1 h)")
    args = parser.parse_args()
    if args.rtt_ms < 0:
        sys.exit("--rtt-ms must be >= 0")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.target, args.rtt_ms, port=args.port, max_seconds=args.max_seconds))


if __name__ == "__main__":
    main()
