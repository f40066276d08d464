"""Test helpers: a minimal Tradovate-protocol socket client and a pytest fixture.

:class:`SimSocket` speaks the wire protocol just enough to drive the simulator from tests (it is
not the production client, which lives in ``phalanx_tradovate``). It reads every frame in the
background and keeps them for assertions.

Use the fixture in another package's tests with
``from phalanx_sim.testing import simulator  # noqa: F401`` in a ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

from phalanx_sim.runner import Simulator, running_simulator
from phalanx_sim.times import VenueClock

__all__ = ["ManualClock", "SimSocket", "login_body", "oso_body", "simulator"]


class ManualClock(VenueClock):
    """A venue clock that moves only when told (token expiry, limit windows, penalties)."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self.now = time.time() if start is None else start

    def time(self) -> float:
        """The fake epoch seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class SimSocket:
    """A test client for ``/v1/websocket``: frames, responses and events, all recorded."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.responses: dict[int, dict[str, Any]] = {}
        self.close_frame: list[Any] | None = None
        self.timeout_s = 10.0
        self._ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read(), name="sim-socket-reader")

    @classmethod
    async def connect(cls, url: str) -> SimSocket:
        """Open a socket (the ``o`` frame is recorded like any other)."""
        return cls(await websockets.connect(url))

    @property
    def heartbeats(self) -> int:
        """How many ``h`` frames arrived."""
        return sum(1 for frame in self.frames if frame == "h")

    @property
    def closed(self) -> bool:
        """Whether the reader has seen the end of the socket."""
        return self._reader.done()

    def props(self, entity_type: str | None = None) -> list[dict[str, Any]]:
        """``d`` of every ``props`` event so far (of one entity type, if given)."""
        return [
            e["d"]
            for e in self.events
            if e.get("e") == "props"
            and (entity_type is None or e["d"]["entityType"] == entity_type)
        ]

    async def send_raw(self, text: str) -> None:
        """Send a raw text frame."""
        await self.connection.send(text)

    async def heartbeat(self) -> None:
        """Send the client heartbeat ``[]``."""
        await self.connection.send("[]")

    async def request(self, endpoint: str, body: Any = None, query: str = "") -> dict[str, Any]:
        """Send ``<endpoint>\\n<id>\\n<query>\\n<body>`` and return the matching response.

        Waits at most :attr:`timeout_s` seconds.
        """
        request_id = next(self._ids)
        if body is None:
            text = ""
        elif isinstance(body, str):
            text = body
        else:
            text = msgspec.json.encode(body).decode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        await self.connection.send(f"{endpoint}\n{request_id}\n{query}\n{text}")
        return await asyncio.wait_for(future, self.timeout_s)

    async def authorize(self, token: str) -> dict[str, Any]:
        """Send ``authorize`` with a raw token body."""
        return await self.request("authorize", token)

    async def close(self) -> None:
        """Close the socket and stop the reader."""
        await self.connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.connection:
                text = frame if isinstance(frame, str) else frame.decode()
                self.frames.append(text)
                if text.startswith("a"):
                    for message in msgspec.json.decode(text[1:]):
                        self._dispatch(message)
                elif text.startswith("c"):
                    self.close_frame = msgspec.json.decode(text[1:])

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "i" in message and "s" in message:
            request_id = int(message["i"])
            self.responses[request_id] = message
            waiter = self._waiters.pop(request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        else:
            self.events.append(message)


def login_body(name: str, password: str) -> dict[str, Any]:
    """An ``auth/accesstokenrequest`` body with every field real clients send."""
    return {
        "name": name,
        "password": password,
        "appId": "phalanx-tests",
        "appVersion": "1.0",
        "deviceId": "device-1",
        "cid": 8,
        "sec": "secret",
    }


def oso_body(
    account: dict[str, Any],
    *,
    action: str = "Buy",
    qty: int = 1,
    symbol: str = "MNQZ6",
    take_profit: float = 21010.0,
    stop_loss: float = 20990.0,
    cl_ord_id: str = "sig-1",
) -> dict[str, Any]:
    """A placeoso body like the executor sends: Market entry, Limit take-profit, Stop loss.

    Args:
        account: ``{"id", "name"}`` of the account (as ``POST /admin/users`` returns it).
    """
    exit_action = "Sell" if action == "Buy" else "Buy"
    return {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "action": action,
        "symbol": symbol,
        "orderQty": qty,
        "orderType": "Market",
        "isAutomated": True,
        "clOrdId": cl_ord_id,
        "bracket1": {"action": exit_action, "orderType": "Limit", "price": take_profit},
        "bracket2": {"action": exit_action, "orderType": "Stop", "stopPrice": stop_loss},
    }


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[Simulator]:
    """A running simulator on a free loopback port, with default settings."""
    async with running_simulator() as sim:
        yield sim
