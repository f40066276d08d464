"""A TCP link that delays one direction: a client's bytes reach the server ``delay_s`` late.

For faults that need the network to be slow one way: e.g. a JetStream pull request that reaches
the server after the client already gave up on it. Everything else is real (both ends are real
processes and protocols); only the time on the wire is staged. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["slow_link"]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay_s, chunk))
        queue.put_nowait((0.0, b""))
        await sender
    finally:
        sender.cancel()
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def slow_link(host: str, port: int, delay_s: float) -> AsyncIterator[int]:
    """Listen on a free loopback port and forward to ``host:port``, the client's bytes
    ``delay_s`` late (the server's answers are not delayed); yields the port to connect to."""
    tasks: set[asyncio.Task[None]] = set()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        both = asyncio.gather(_pipe(client_r, server_w, delay_s), _pipe(server_r, client_w, 0.0))
        with contextlib.suppress(Exception):
            await both

    def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(accept(r, w))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
