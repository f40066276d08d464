"""Fakes of Tradovate for tests: a scriptable WebSocket server and a REST venue for MockTransport.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
from websockets.asyncio.server import Server, ServerConnection, serve

from phalanx_tradovate import wire

__all__ = ["FakeRequest", "FakeTradovateRest", "FakeTradovateSocketServer", "Reply"]

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


class FakeTradovateRest:
    """A fake Tradovate REST venue for ``httpx.MockTransport``: logins, accounts, renewal.

    Tokens expire ``token_lifetime_s`` after ``now_ns()`` (inject a fake clock's ``time_ns``).
    Wrong credentials answer ``errorText`` in a 200, like Tradovate; unknown tokens answer 401.

    Example::

        venue = FakeTradovateRest(clock.time_ns)
        venue.add_user("alice", "pw", [(101, "DEMO101")])
        rest = TradovateRest("http://venue/v1", client=httpx.AsyncClient(
            transport=httpx.MockTransport(venue.handle)))

    Args:
        now_ns: the venue's clock.
        token_lifetime_s: lifetime of issued tokens.
    """

    def __init__(self, now_ns: Callable[[], int], token_lifetime_s: float = 4800.0) -> None:
        self.now_ns = now_ns
        self.token_lifetime_s = token_lifetime_s
        self.users: dict[str, tuple[str, int, list[tuple[int, str]]]] = {}
        self.tokens: dict[str, int] = {}  # token -> user id
        self.calls: list[str] = []
        self.login_bodies: list[Any] = []
        self.renew_status: int | None = None
        self.before_renew: Callable[[], Awaitable[None]] | None = None
        self._seq = 0

    def add_user(self, name: str, password: str, accounts: list[tuple[int, str]]) -> int:
        """Create a user with accounts ``(id, name)``; returns its user id."""
        user_id = 1000 + len(self.users)
        self.users[name] = (password, user_id, accounts)
        return user_id

    def calls_to(self, endpoint: str) -> int:
        """How many times ``endpoint`` (``auth/renewaccesstoken``) was called."""
        return sum(1 for c in self.calls if c == endpoint)

    def _issue(self, user_id: int, name: str) -> dict[str, Any]:
        self._seq += 1
        token = f"tok-{user_id}-{self._seq}"
        self.tokens[token] = user_id
        expires = self.now_ns() + int(self.token_lifetime_s * 1e9)
        stamp = datetime.fromtimestamp(expires / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")
        return {
            "accessToken": token,
            "mdAccessToken": f"md-{token}",
            "expirationTime": stamp,
            "userId": user_id,
            "name": name,
            "userStatus": "Active",
            "hasLive": False,
        }

    def _user(self, request: httpx.Request) -> tuple[int, str] | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user_id = self.tokens.get(token)
        if user_id is None:
            return None
        name = next(n for n, (_, uid, _) in self.users.items() if uid == user_id)
        return user_id, name

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """The ``httpx.MockTransport`` handler."""
        endpoint = request.url.path.split("/v1/", 1)[-1]
        self.calls.append(endpoint)
        if endpoint == "auth/accesstokenrequest":
            body = wire.decode_json(request.content)
            self.login_bodies.append(body)
            user = self.users.get(body.get("name", ""))
            if user is None or user[0] != body.get("password"):
                return httpx.Response(
                    200, json={"errorText": "Incorrect username or password. Please try again."}
                )
            return httpx.Response(200, json=self._issue(user[1], body["name"]))
        who = self._user(request)
        if who is None:
            return httpx.Response(401, text="Access is denied")
        user_id, name = who
        if endpoint == "auth/renewaccesstoken":
            if self.before_renew is not None:
                await self.before_renew()
            if self.renew_status is not None:
                return httpx.Response(self.renew_status, text="Access is denied")
            return httpx.Response(200, json=self._issue(user_id, name))
        if endpoint == "account/list":
            accounts = self.users[name][2]
            return httpx.Response(
                200,
                json=[
                    {
                        "id": i,
                        "name": n,
                        "userId": user_id,
                        "active": True,
                        "accountType": "Customer",
                    }
                    for i, n in accounts
                ],
            )
        return httpx.Response(404, text=f"Not found: {endpoint}")
