"""Tradovate trading WebSocket: authorize, heartbeat, request/response, ``props`` events.

One :class:`TradovateSocket` per login. It costs two tasks (a reader and a heartbeat timer) and
one future per request in flight, so a process can hold many of them. The heartbeat ``[]`` is sent
every ``heartbeat_s`` on its own timer, never in answer to a server ``h``
(docs/tradovate-protocol.md §3).

When the connection drops every pending request fails with :class:`ConnectionLost` (retry-safe
only for reads) and ``on_close`` is called once. Reconnecting is left to the caller, or to
:class:`~phalanx_tradovate.reconnecting.ReconnectingSocket`, which reconnects with capped
exponential backoff and a fresh token. The typed order and read calls are
:class:`~phalanx_tradovate.ws_calls.SocketCalls`, which this socket extends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from phalanx_tradovate import wire
from phalanx_tradovate.checks import is_read, raise_for_payload, raise_for_status
from phalanx_tradovate.errors import (
    ConnectionLost,
    LockoutError,
    ProtocolError,
    RequestTimeout,
    TradovateError,
    VenueUnreachable,
)
from phalanx_tradovate.frames import (
    CLIENT_HEARTBEAT,
    ArrayFrame,
    CloseFrame,
    EventMessage,
    OpenFrame,
    PropsEvent,
    Response,
    encode_request,
    parse_frame,
    parse_props,
)
from phalanx_tradovate.ws_calls import SocketCalls

__all__ = [
    "OnClose",
    "OnProps",
    "OnShutdown",
    "TokenSource",
    "TradovateSocket",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
OnProps = Callable[[PropsEvent], None]
OnClose = Callable[["TradovateSocket", str], None]
OnShutdown = Callable[["TradovateSocket", Any], None]
OnEvent = Callable[[EventMessage], None]
TokenSource = Callable[[], Awaitable[str]]

# snapshot array name -> entity type, for extra parts of a split sync response
_SNAPSHOT_ARRAYS = {
    "accounts": "account",
    "positions": "position",
    "orders": "order",
    "orderVersions": "orderVersion",
    "commands": "command",
    "commandReports": "commandReport",
    "executionReports": "executionReport",
    "fills": "fill",
    "cashBalances": "cashBalance",
    "contracts": "contract",
}


class TradovateSocket(SocketCalls):
    """An authorized trading WebSocket for one login.

    Args:
        url: the socket URL (``wss://demo.tradovateapi.com/v1/websocket``).
        token: the access token used by ``authorize``.
        on_props: called (synchronously, in the reader task) for each entity change.
        on_close: called once with ``(socket, reason)`` when the connection ends.
        on_shutdown: called with ``(socket, d)`` when the server announces a ``shutdown``.
        on_event: called for every other event (``md``, ``chart``, ``clock``: the market-data
            socket, ``phalanx_tradovate.marketdata``).
        heartbeat_s: interval of the client heartbeat ``[]``.
        request_timeout_s: default time to wait for a response.
        connect_timeout_s: time allowed to open the socket and receive ``o``.
        stale_after_s: when set, close the socket after this long without any server frame
            (detects silent stalls; the server sends ``h`` when idle).
        lockout_s: after a 429 on this socket, refuse requests locally (``LockoutError``,
            nothing sent) for this long: Tradovate's lockout is a rolling hour that every
            request restarts.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        on_props: OnProps | None = None,
        on_close: OnClose | None = None,
        on_shutdown: OnShutdown | None = None,
        on_event: OnEvent | None = None,
        heartbeat_s: float = 2.5,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        stale_after_s: float | None = None,
        lockout_s: float = 3600.0,
    ) -> None:
        self.url = url
        self.lockout_s = lockout_s
        #: event-loop time until which requests are refused locally after a 429 (0: none)
        self.locked_until = 0.0
        self._token = token
        self.on_props = on_props
        self.on_close = on_close
        self.on_shutdown = on_shutdown
        self.on_event = on_event
        self.heartbeat_s = heartbeat_s
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.stale_after_s = stale_after_s
        self._ws: ClientConnection | None = None
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[Response], str]] = {}
        self._sync_ids: set[int] = set()
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._open = False
        self._closed = False
        self._last_rx = 0.0
        self.close_reason = ""
        self.shutdown_reason: Any = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is open and authorized."""
        return self._open and not self._closed

    async def connect(self) -> None:
        """Open the socket, wait for ``o``, authorize, and start the reader and heartbeat.

        Raises:
            VenueUnreachable: the socket could not be opened (nothing was sent).
            AuthError: ``authorize`` was refused (401); the socket is closed.
            ProtocolError: the server did not start with ``o``.
            RequestTimeout: no answer to ``authorize`` in time.
        """
        if self._ws is not None:
            raise RuntimeError("TradovateSocket.connect() called twice; make a new socket")
        try:
            self._ws = await asyncio.wait_for(
                connect(
                    self.url,
                    ping_interval=None,
                    compression=None,
                    max_size=None,
                    proxy=_proxy_for(self.url),
                ),
                self.connect_timeout_s,
            )
            first = await asyncio.wait_for(self._ws.recv(), self.connect_timeout_s)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
            await self._abort(f"connect failed: {exc!r}")
            raise VenueUnreachable(
                f"cannot open {self.url}: {exc!r}", endpoint="websocket"
            ) from exc
        try:
            frame = parse_frame(first)
        except ProtocolError:
            frame = None
        if not isinstance(frame, OpenFrame):
            await self._abort("no open frame")
            raise ProtocolError(f"expected 'o' first, got {first!r:.80}", endpoint="websocket")
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        self._reader = asyncio.create_task(self._read(), name=f"tradovate-ws-read:{self.url}")
        self._heartbeat = asyncio.create_task(self._beat(), name=f"tradovate-ws-hb:{self.url}")
        self._open = True
        try:
            await self.request("authorize", self._token)
        except TradovateError:
            await self.close("authorize failed")
            raise

    async def reauthorize(self, token: str) -> None:
        """Send ``authorize`` again with a renewed token on the open socket.

        Raises:
            AuthError: the new token was refused.
        """
        await self.request("authorize", token)
        self._token = token

    async def close(self, reason: str = "closed by client") -> None:
        """Close the socket; pending requests fail with :class:`ConnectionLost` (idempotent)."""
        if self._closed:
            return
        self.close_reason = self.close_reason or reason
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None and self._reader is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._teardown(reason)

    async def _abort(self, reason: str) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        self._closed = True
        self.close_reason = reason

    def _teardown(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.close_reason = self.close_reason or reason
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        pending, self._pending = self._pending, {}
        for request_id, (fut, endpoint) in pending.items():
            if not fut.done():
                fut.set_exception(
                    ConnectionLost(
                        f"socket closed with request {request_id} in flight ({reason})",
                        endpoint=endpoint,
                        retry_safe=is_read(endpoint),
                    )
                )
        if self.on_close is not None:
            try:
                self.on_close(self, self.close_reason)
            except Exception:
                log.exception("on_close callback failed")

    # -- tasks --------------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        reason = "connection closed"
        loop = asyncio.get_running_loop()
        try:
            async for message in self._ws:
                self._last_rx = loop.time()
                try:
                    frame = parse_frame(message)
                except ProtocolError as exc:
                    log.warning("%s: ignoring bad frame: %s", self.url, exc)
                    continue
                if isinstance(frame, ArrayFrame):
                    for item in frame.messages:
                        self._dispatch(item)
                elif isinstance(frame, CloseFrame):
                    reason = f"server closed: {frame.code} {frame.reason}".strip()
                    break
        except ConnectionClosed as exc:
            reason = f"connection closed: {exc}"
        except asyncio.CancelledError:
            reason = "reader cancelled"
            raise
        except Exception as exc:
            log.exception("%s: reader failed", self.url)
            reason = f"reader failed: {exc!r}"
        finally:
            self._teardown(reason)
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close()

    def _dispatch(self, item: Response | EventMessage) -> None:
        if isinstance(item, Response):
            self._answer(item)
        elif item.kind == "props":
            try:
                events = parse_props(item.raw if item.raw is not None else item.data)
            except ProtocolError as exc:
                log.warning("%s: %s", self.url, exc)
                return
            self._emit(events)
        elif item.kind == "shutdown":
            self._shutdown_announced(item.data)
        elif self.on_event is not None:
            try:
                self.on_event(item)
            except Exception:
                log.exception("on_event callback failed for %s", item.kind)

    def _answer(self, item: Response) -> None:
        entry = self._pending.pop(item.request_id, None)
        if entry is not None:
            if not entry[0].done():
                entry[0].set_result(item)
        elif item.request_id in self._sync_ids:
            self._snapshot_part(item.data)
        else:
            log.debug("%s: response to unknown request %d", self.url, item.request_id)

    def _shutdown_announced(self, data: Any) -> None:
        self.shutdown_reason = data
        log.warning("%s: server announced shutdown: %r", self.url, data)
        if self.on_shutdown is not None:
            try:
                self.on_shutdown(self, data)
            except Exception:
                log.exception("on_shutdown callback failed")

    def _emit(self, events: Iterable[PropsEvent]) -> None:
        if self.on_props is None:
            return
        for event in events:
            try:
                self.on_props(event)
            except Exception:
                log.exception("on_props callback failed for %s", event.entity_type)

    def _snapshot_part(self, data: Any) -> None:
        """A later part of a split sync response: deliver its entities as ``Snapshot`` props."""
        if not isinstance(data, dict):
            return
        for name, entity_type in _SNAPSHOT_ARRAYS.items():
            items = data.get(name)
            if isinstance(items, list):
                self._emit(
                    PropsEvent(entity_type, "Snapshot", e) for e in items if isinstance(e, dict)
                )

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closed and self._ws is not None:
                await asyncio.sleep(self.heartbeat_s)
                if self.stale_after_s is not None and (
                    loop.time() - self._last_rx > self.stale_after_s
                ):
                    log.warning("%s: no frame for %.1fs; closing", self.url, self.stale_after_s)
                    self.close_reason = "stale: no server frame"
                    await self._ws.close()
                    return
                await self._ws.send(CLIENT_HEARTBEAT)
        except ConnectionClosed:
            return

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        endpoint: str,
        body: msgspec.Struct | dict[str, Any] | list[Any] | str | bytes | None = None,
        query: str = "",
        *,
        timeout_s: float | None = None,
    ) -> Any:
        """Send one request and return the response's ``d`` once its status is checked.

        Args:
            endpoint: e.g. ``order/placeoso`` (no leading slash).
            body: a struct/dict (JSON), a raw string (``authorize``), or encoded JSON bytes.
            query: the query string without ``?`` (``masterid=1``).
            timeout_s: overrides ``request_timeout_s``.

        Raises:
            RequestTimeout: no response in time (retry-safe only for reads).
            ConnectionLost: the socket is closed or dropped while waiting.
            AuthError, LockoutError, PenaltyError, OrderRejected, VenueError: per the response.
            LockoutError: also without sending, while a 429 lockout seen on this socket lasts
                (``lockout_s``): every request during a lockout would extend it.
        """
        loop = asyncio.get_running_loop()
        if loop.time() < self.locked_until:
            raise LockoutError(
                429,
                f"locked out for {self.locked_until - loop.time():.0f}s more; not sent",
                endpoint=endpoint,
            )
        response = await self._roundtrip(endpoint, body, query, timeout_s)
        if response.status == 429:
            self.locked_until = loop.time() + self.lockout_s
        raise_for_status(endpoint, response.status, response.data)
        raise_for_payload(endpoint, response.data)
        return response.data

    async def _roundtrip(
        self,
        endpoint: str,
        body: msgspec.Struct | dict[str, Any] | list[Any] | str | bytes | None,
        query: str,
        timeout_s: float | None,
    ) -> Response:
        ws = self._ws
        if ws is None or not self.connected:
            raise ConnectionLost(
                f"socket not connected ({self.close_reason or 'never opened'})",
                endpoint=endpoint,
                retry_safe=True,
            )
        request_id = self._next_id
        self._next_id += 1
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (fut, endpoint)
        try:
            await ws.send(encode_request(endpoint, request_id, query, body))
        except ConnectionClosed as exc:
            self._pending.pop(request_id, None)
            raise ConnectionLost(
                f"socket closed while sending: {exc}",
                endpoint=endpoint,
                retry_safe=is_read(endpoint),
            ) from exc
        timeout = self.request_timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise RequestTimeout(
                f"no response to request {request_id} within {timeout:g}s",
                endpoint=endpoint,
                retry_safe=is_read(endpoint),
            ) from None

    async def sync(
        self,
        user_id: int,
        account_ids: Iterable[int] | None = None,
        entity_types: Iterable[str] = wire.DEFAULT_ENTITY_TYPES,
    ) -> wire.SyncSnapshot:
        """Start ``user/syncrequest`` and return the initial snapshot.

        ``entityTypes`` is always sent explicitly and ``splitResponses`` is true. Updates then
        arrive through ``on_props``; later parts of a split snapshot arrive there as
        ``eventType == "Snapshot"``. A sync cannot be cancelled: close the socket instead.
        """
        req = wire.SyncRequest(
            users=[user_id],
            accounts=list(account_ids) if account_ids is not None else None,
            entityTypes=list(entity_types),
        )
        request_id = self._next_id
        self._sync_ids.add(request_id)
        return await self._typed("user/syncrequest", wire.SyncSnapshot, req)


_proxies: dict[str, str | None] = {}


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url``, looked up once per URL and process.

    websockets looks it up on every connect by scanning the environment (``*_proxy``); with a
    thousand sockets that scan was a visible share of the executor's CPU (ADR-0160).

    Raises:
        InvalidURI: if ``url`` is not a WebSocket URI.
    """
    if url not in _proxies:
        _proxies[url] = get_proxy(parse_uri(url))
    return _proxies[url]
