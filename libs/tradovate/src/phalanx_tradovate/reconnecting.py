"""A trading WebSocket kept connected: reconnects with capped exponential backoff, jitter and a
fresh token for every attempt (:class:`ReconnectingSocket`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from phalanx_common.backoff import Backoff
from phalanx_tradovate.errors import AuthError, TradovateError
from phalanx_tradovate.ws import TokenSource, TradovateSocket

__all__ = ["ReconnectingSocket"]

log = logging.getLogger(__name__)


class ReconnectingSocket:
    """Keeps one :class:`TradovateSocket` connected, reconnecting with backoff and a fresh token.

    ``token_source`` is awaited before every connection attempt (so a renewed token is used),
    and ``on_connected`` after every successful connect (re-run ``sync`` there). An
    :class:`AuthError` is not retried blindly: it waits for the longest backoff before trying
    again with whatever token the source then returns.

    Args:
        url: the socket URL.
        token_source: returns the current access token.
        on_connected: awaited with each new, authorized socket.
        backoff_s: first delay; doubled per failure up to ``max_backoff_s``, with jitter.
        socket_kwargs: passed to every :class:`TradovateSocket`.
    """

    def __init__(
        self,
        url: str,
        token_source: TokenSource,
        *,
        on_connected: Callable[[TradovateSocket], Awaitable[None]] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        **socket_kwargs: Any,
    ) -> None:
        self.url = url
        self._token_source = token_source
        self._on_connected = on_connected
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._socket_kwargs = socket_kwargs
        self.socket: TradovateSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._dropped = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = False
        self.connects = 0

    def start(self) -> None:
        """Start the connect/reconnect loop in a background task."""
        self._task = asyncio.create_task(self._run(), name=f"tradovate-ws-keep:{self.url}")

    async def wait_connected(self, timeout_s: float | None = None) -> TradovateSocket:
        """Wait until a socket is connected and return it.

        Raises:
            TimeoutError: when ``timeout_s`` passes first.
        """
        await asyncio.wait_for(self._ready.wait(), timeout_s)
        assert self.socket is not None
        return self.socket

    async def stop(self) -> None:
        """Stop reconnecting and close the socket (idempotent)."""
        self._stopping = True
        self._dropped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.socket is not None:
            await self.socket.close()

    def _closed(self, sock: TradovateSocket, reason: str) -> None:
        log.info("%s: socket closed (%s)", self.url, reason)
        self._ready.clear()
        self._dropped.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            token = await self._token_source()
            sock = TradovateSocket(self.url, token, on_close=self._closed, **self._socket_kwargs)
            try:
                self._dropped.clear()
                await sock.connect()
                if self._on_connected is not None:
                    await self._on_connected(sock)
            except TradovateError as exc:
                failures += 1
                await sock.close()
                backoff = Backoff(self._backoff_s, self._max_backoff_s, jitter="equal")
                delay = (
                    backoff.max_s if isinstance(exc, AuthError) else backoff.ceiling(failures - 1)
                )
                log.warning("%s: connect failed (%s); retrying in %.1fs", self.url, exc, delay)
                await asyncio.sleep(backoff.spread(delay))
                continue
            failures = 0
            self.connects += 1
            self.socket = sock
            self._ready.set()
            await self._dropped.wait()
