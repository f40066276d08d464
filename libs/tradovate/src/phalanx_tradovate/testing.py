"""A scriptable fake of Tradovate's WebSocket, for tests of failure shapes a simulator may not make.

Not a simulator: each endpoint answers what the test scripts (a status and payload, or nothing at
all to model a dropped response). It speaks the real framing (``o``, ``a[...]``, ``c[...]``) and
records every request and client heartbeat it receives.

Example::

    async with FakeTradovateSocketServer(token="t") as fake:
        fake.on("order/placeoso", lambda req: (200, {"orderId": 1, "oso1Id": 2, "oso2Id": 3}))
        sock = TradovateSocket(fake.url, "t")
        await sock.connect()
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from phalanx_tradovate import wire

__all__ = ["FakeRequest", "FakeTradovateSocketServer", "Reply"]

Reply = tuple[int, Any] | None
"""``(status, d)`` to answer, or ``None`` to never answer."""


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake server received it."""

    endpoint: str
    request_id: int
    query: str
    body: str

    def json(self) -> Any:
        """The body decoded as JSON (decimals exact)."""
        return wire.decode_json(self.body) if self.body else None


class FakeTradovateSocketServer:
    """A fake Tradovate trading socket on ``127.0.0.1`` and a free port.

    Args:
        token: the only token ``authorize`` accepts.
    """

    def __init__(self, token: str = "fake-token") -> None:  # noqa: S107 - a fake
        self.token = token
        self.requests: list[FakeRequest] = []
        self.heartbeats = 0
        self.connections: list[ServerConnection] = []
        self._handlers: dict[str, Callable[[FakeRequest], Reply]] = {}
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``ws://`` URL of the running server."""
        return f"ws://127.0.0.1:{self.port}/v1/websocket"

    def on(self, endpoint: str, handler: Callable[[FakeRequest], Reply]) -> None:
        """Script the answer of ``endpoint`` (replaces any previous handler)."""
        self._handlers[endpoint] = handler

    def requests_to(self, endpoint: str) -> list[FakeRequest]:
        """The requests received for ``endpoint``, in order."""
        return [r for r in self.requests if r.endpoint == endpoint]

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeTradovateSocketServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def push(self, *messages: dict[str, Any]) -> None:
        """Send one ``a[...]`` frame with ``messages`` to every open connection."""
        frame = "a" + wire.encode(list(messages)).decode()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.send(frame)

    async def push_props(self, entity_type: str, event_type: str, entity: Any) -> None:
        """Send a ``props`` event (``entity`` may be an object or an array)."""
        await self.push(
            {
                "e": "props",
                "d": {"entityType": entity_type, "eventType": event_type, "entity": entity},
            }
        )

    async def drop(self) -> None:
        """Drop every connection abruptly (no close frame)."""
        for conn in list(self.connections):
            conn.transport.abort()

    async def _handle(self, conn: ServerConnection) -> None:
        self.connections.append(conn)
        try:
            await conn.send("o")
            async for message in conn:
                text = message if isinstance(message, str) else message.decode()
                if text == "[]":
                    self.heartbeats += 1
                    continue
                endpoint, rid, query, body = [*text.split("\n", 3), "", "", ""][:4]
                req = FakeRequest(endpoint, int(rid), query, body)
                self.requests.append(req)
                reply = self._reply(req)
                if reply is not None:
                    status, data = reply
                    msg: dict[str, Any] = {"s": status, "i": req.request_id}
                    if data is not None:
                        msg["d"] = data
                    await conn.send("a" + wire.encode([msg]).decode())
        except Exception:  # noqa: S110 - a dropped client is normal for a fake server
            pass
        finally:
            self.connections.remove(conn)

    def _reply(self, req: FakeRequest) -> Reply:
        handler = self._handlers.get(req.endpoint)
        if handler is not None:
            return handler(req)
        if req.endpoint == "authorize":
            return (200, None) if req.body == self.token else (401, "Invalid access token")
        return (404, f'"Not found: {req.endpoint}"')
