"""One authorized trading WebSocket per login, reused across signals.

Sockets are opened ahead of need (warm-up) for the logins of the shards this replica owns, so
the hot path never connects or authorizes. Venue ``props`` events (orders, fills, positions)
are turned into Phalanx events by a :class:`VenueEventSink`. When auth writes a renewed token,
the login's socket is re-authorized with it.

Connecting spends the login's budget like any request (ADR-0056): ``authorize`` and
``user/syncrequest`` each take a permit (the sync also from the egress IP's sync budget) before
the connect slot is taken, so a login waiting for its budget never holds a slot another login
needs; a login whose budget is blocked (penalty, lockout) is not ready rather than waited for;
penalties and lockouts answered while connecting block the login.

Nothing goes out on an expired token (ADR-0110): a token that expires within
``expiry_margin_s`` is not used to connect, and a socket authorized with such a token is not
ready (:meth:`ConnectionPool.token_fresh` is checked again just before every order); the login
waits for auth to renew the token, or for a person when auth raised ``ReauthRequired``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from phalanx_common.backoff import Backoff
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.records import TokenRecord
from phalanx_executor.budgets import SYNC_ENDPOINT
from phalanx_executor.metrics import ExecutorMetrics
from phalanx_executor.permits import Priority
from phalanx_executor.venue_calls import VenueCalls
from phalanx_tradovate import PropsEvent, SyncSnapshot, TradovateError, TradovateSocket

__all__ = ["ConnectionPool", "LoginNotReady"]

log = logging.getLogger(__name__)

PropsCallback = Callable[[str, PropsEvent], None]
SnapshotCallback = Callable[[str, SyncSnapshot], Awaitable[None]]


def _unheard_props(login_id: str, _event: PropsEvent) -> None:
    log.warning("props event of %s dropped: nobody subscribed to the pool", login_id)


async def _unheard_snapshot(login_id: str, _snapshot: SyncSnapshot) -> None:
    log.warning("sync snapshot of %s dropped: nobody subscribed to the pool", login_id)


class LoginNotReady(Exception):
    """There is no token for the login yet (auth has not linked it), or it cannot connect."""


class ConnectionPool:
    r"""Authorized sockets keyed by login id; props events and sync snapshots go to the
    callbacks given or to the :meth:`subscribe`\ d listener (the venue view)."""

    def __init__(
        self,
        ws_url: str,
        token_for: Callable[[str], TokenRecord | None],
        on_props: PropsCallback | None = None,
        on_snapshot: SnapshotCallback | None = None,
        max_sockets: int = 2000,
        connect_concurrency: int = 50,
        request_timeout_s: float = 10.0,
        calls: VenueCalls | None = None,
        reconnect_backoff_s: float = 0.5,
        reconnect_backoff_max_s: float = 30.0,
        owns: Callable[[str], bool] | None = None,
        metrics: ExecutorMetrics | None = None,
        clock: Clock | None = None,
        expiry_margin_s: float = 5.0,
        lockout_s: float = 3600.0,
    ) -> None:
        self._ws_url = ws_url
        self._token_for = token_for
        self._on_props: PropsCallback = on_props or _unheard_props
        self._on_snapshot: SnapshotCallback = on_snapshot or _unheard_snapshot
        self._max_sockets = max_sockets
        self._connect_sem = asyncio.Semaphore(connect_concurrency)
        # Background connects (warm-up, reconnects) at once: each takes permits from Redis, and
        # 1,000 logins at once drained the Redis pool (ADR-0171). Intents' own gets are not held.
        self._background = asyncio.Semaphore(connect_concurrency)
        self._request_timeout_s = request_timeout_s
        self._calls = calls
        self._backoff_s = reconnect_backoff_s
        self._backoff_max_s = reconnect_backoff_max_s
        self._owns = owns or (lambda _login: True)
        self._failures: dict[str, int] = {}
        self._reconnects: dict[str, asyncio.Task[None]] = {}
        self._wanted: set[str] = set()  # logins kept connected until dropped on purpose
        self._closing = False
        self._sockets: dict[str, TradovateSocket] = {}
        self._tokens: dict[str, str] = {}
        self._expires_ns: dict[str, int] = {}  # expiry of the token each socket is authorized with
        self._clock = clock or LiveClock()
        self._margin_ns = int(expiry_margin_s * 1e9)
        self._lockout_s = lockout_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._metrics = metrics or ExecutorMetrics()
        self._metrics.watch_sockets(self.__len__, self.connected_count)

    def subscribe(self, on_props: PropsCallback, on_snapshot: SnapshotCallback) -> None:
        """Send every socket's props events and sync snapshots to these (ADR-0166: the venue
        view needs the pool to look things up, so it is built after it and subscribes)."""
        self._on_props = on_props
        self._on_snapshot = on_snapshot

    def __len__(self) -> int:
        return len(self._sockets)

    def connected_count(self) -> int:
        """How many sockets are open and authorized right now."""
        return sum(1 for sock in self._sockets.values() if sock.connected)

    def is_connected(self, login_id: str) -> bool:
        """Whether the login's socket is open and authorized right now."""
        sock = self._sockets.get(login_id)
        return sock is not None and sock.connected

    def _fresh(self, expires_ns: int) -> bool:
        return expires_ns - self._clock.time_ns() > self._margin_ns

    def token_fresh(self, login_id: str) -> bool:
        """Whether the login's socket is authorized with a token not about to expire."""
        return self._fresh(self._expires_ns.get(login_id, 0))

    def reconnect_failures(self, login_id: str) -> int:
        """Failed reconnect attempts of the login since it was last connected."""
        return self._failures.get(login_id, 0)

    def has(self, login_id: str) -> bool:
        """Whether the login has a socket (connected or not)."""
        return login_id in self._sockets

    async def get(self, login_id: str) -> TradovateSocket:
        """The login's authorized, synced socket, connecting it if needed.

        Raises:
            LoginNotReady: when there is no token, the cap is reached, or connecting fails.
        """
        sock = self._sockets.get(login_id)
        if sock is not None and sock.connected and self.token_fresh(login_id):
            return sock
        lock = self._locks.setdefault(login_id, asyncio.Lock())
        async with lock:
            sock = self._sockets.get(login_id)
            if sock is not None and sock.connected:
                if self.token_fresh(login_id):
                    return sock
                # auth may have renewed the token while this socket was not re-authorized yet
                await self.token_changed(login_id, self._token_for(login_id))
                if self.token_fresh(login_id) and sock.connected:
                    return sock
                raise LoginNotReady(f"login {login_id!r}: token expired or about to; not used")
            return await self._connect(login_id)

    async def _connect(self, login_id: str) -> TradovateSocket:
        token = self._usable_token(login_id)
        old = self._sockets.pop(login_id, None)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        sock = self._new_socket(login_id, token)
        await self._permits_to_connect(login_id)
        snapshot = await self._open(login_id, sock, token)
        if not self._owns(login_id):  # its shard moved away while connecting: keep no socket
            with contextlib.suppress(Exception):
                await sock.close()
            raise LoginNotReady(f"login {login_id!r} is no longer worked by this replica")
        self._sockets[login_id] = sock
        self._wanted.add(login_id)
        self._tokens[login_id] = token.access_token
        self._expires_ns[login_id] = token.expires_ns()
        self._failures.pop(login_id, None)
        await self._on_snapshot(login_id, snapshot)
        return sock

    def _usable_token(self, login_id: str) -> TokenRecord:
        """The login's token, if this replica may open a socket with it now.

        Raises:
            LoginNotReady: not this replica's login, no token or one about to expire, or the
                socket cap is reached.
        """
        if not self._owns(login_id):
            raise LoginNotReady(f"login {login_id!r} is not worked by this replica")
        token = self._token_for(login_id)
        if token is None:
            raise LoginNotReady(f"no token for login {login_id!r} yet")
        if not self._fresh(token.expires_ns()):
            # authorizing with it would only be refused: wait for auth (renewal or a person)
            raise LoginNotReady(f"login {login_id!r}: token expired or about to; not used")
        if login_id not in self._sockets and len(self._sockets) >= self._max_sockets:
            raise LoginNotReady(f"socket cap of {self._max_sockets} reached")
        return token

    def _new_socket(self, login_id: str, token: TokenRecord) -> TradovateSocket:
        def on_props(event: PropsEvent) -> None:
            self._on_props(login_id, event)

        def on_close(closed: TradovateSocket, reason: str) -> None:
            if self._sockets.get(login_id) is closed and not self._closing:
                self._metrics.socket_drops.labels(login_id).inc()
                self._schedule_reconnect(login_id, reason)

        return TradovateSocket(
            self._ws_url,
            token.access_token,
            on_props=on_props,
            on_close=on_close,
            request_timeout_s=self._request_timeout_s,
            lockout_s=self._lockout_s,
        )

    async def _permits_to_connect(self, login_id: str) -> None:
        """The sync's and the authorize's permits; none while the login's budget is blocked.

        Permits are taken outside the connect slot: waiting for them never holds up another
        login."""
        if self._calls is None:
            return
        blocked = await self._calls.blocked_for(login_id, SYNC_ENDPOINT)
        if blocked > 0:
            raise LoginNotReady(f"login {login_id!r}: budget blocked for {blocked:.1f}s")
        await self._calls.permit(login_id, Priority.RECONCILE, SYNC_ENDPOINT)
        await self._calls.permit(login_id, Priority.RECONCILE, "authorize")

    async def _open(self, login_id: str, sock: TradovateSocket, token: TokenRecord) -> SyncSnapshot:
        """Connect, authorize and sync in a connect slot; the socket closed on failure."""
        async with self._connect_sem:
            try:
                await sock.connect()
                return await sock.sync(token.user_id)
            except TradovateError as exc:
                with contextlib.suppress(Exception):
                    await sock.close()
                if self._calls is not None:  # a penalty or lockout blocks the login
                    await self._calls.honour(login_id, exc, exc.endpoint)
                raise LoginNotReady(f"login {login_id!r}: cannot connect: {exc}") from exc
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await sock.close()
                raise LoginNotReady(f"login {login_id!r}: cannot connect: {exc}") from exc

    def _schedule_reconnect(self, login_id: str, reason: str) -> None:
        """Reconnect a dropped login in the background after a full-jitter backoff.

        The jitter spreads the reconnects of many logins dropped at once (a venue blip) over
        the backoff window, and the connect semaphore bounds how many run together, so the
        venue sees no reconnect storm and the next signal finds warm sockets.
        """
        if login_id in self._reconnects:
            return
        failures = self._failures.get(login_id, 0)
        delay = Backoff(self._backoff_s, self._backoff_max_s, jitter="full").delay(failures)
        log.info("login %s dropped (%s); reconnecting in %.2fs", login_id, reason, delay)
        task = asyncio.create_task(self._reconnect(login_id, delay), name=f"reconnect:{login_id}")
        self._reconnects[login_id] = task

    async def _reconnect(self, login_id: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            # ``_wanted``, not ``_sockets``: a failed attempt has already removed the old
            # socket, and the login must still be tried again.
            if login_id not in self._wanted or self._closing:
                return  # dropped on purpose meanwhile
            if not self._owns(login_id):  # its shard moved away meanwhile
                self._reconnects.pop(login_id, None)  # so drop() does not cancel this task
                await self.drop(login_id)
                return
            try:
                await self._get_in_background(login_id)
            except Exception as exc:  # LoginNotReady, or Redis/NATS down for the permit
                self._metrics.reconnects.labels(login_id, "failed").inc()
                self._failures[login_id] = self._failures.get(login_id, 0) + 1
                log.warning("reconnect of %s failed: %s", login_id, exc)
                self._reconnects.pop(login_id, None)
                self._schedule_reconnect(login_id, "retry")
                return
            self._metrics.reconnects.labels(login_id, "ok").inc()
        finally:
            if self._reconnects.get(login_id) is asyncio.current_task():
                self._reconnects.pop(login_id, None)

    async def _get_in_background(self, login_id: str) -> TradovateSocket:
        async with self._background:
            return await self.get(login_id)

    async def warm(self, login_ids: list[str]) -> int:
        """Connect every listed login that has a token; return how many are connected.

        A login of this replica that fails to connect is tried again in the background (with
        the reconnect back-off) rather than left cold until an intent needs it. At most
        ``connect_concurrency`` logins warm or reconnect at once, over all calls.
        """
        with_token = [login for login in login_ids if self._token_for(login) is not None]
        results = await asyncio.gather(
            *(self._get_in_background(login) for login in with_token), return_exceptions=True
        )
        for login, result in zip(with_token, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("warm-up: %s", result)
                if self._owns(login) and not self._closing:
                    self._wanted.add(login)
                    self._failures[login] = self._failures.get(login, 0) + 1
                    self._schedule_reconnect(login, "warm-up failed")
        return sum(1 for r in results if not isinstance(r, BaseException))

    async def drop(self, login_id: str) -> None:
        """Close a login's socket, if it has one (and do not reconnect it)."""
        task = self._reconnects.pop(login_id, None)
        if task is not None:
            task.cancel()
        self._wanted.discard(login_id)
        sock = self._sockets.pop(login_id, None)
        self._tokens.pop(login_id, None)
        self._expires_ns.pop(login_id, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                await sock.close()

    async def retain(self, login_ids: set[str]) -> int:
        """Close the sockets of logins not in ``login_ids`` (no longer ours); return how many."""
        gone = [login for login in self._sockets if login not in login_ids]
        for login in gone:
            await self.drop(login)
        return len(gone)

    async def token_changed(self, login_id: str, token: TokenRecord | None) -> None:
        """Follow auth: re-authorize the login's socket with a renewed token."""
        sock = self._sockets.get(login_id)
        if sock is None or token is None or self._tokens.get(login_id) == token.access_token:
            return
        if not self._fresh(token.expires_ns()):
            return  # an expired token would only be refused; the socket keeps its own
        try:
            if self._calls is not None:
                await self._calls.permit(login_id, Priority.RECONCILE, "authorize")
            try:
                await sock.reauthorize(token.access_token)
            except TradovateError as exc:
                if self._calls is not None:
                    await self._calls.honour(login_id, exc, exc.endpoint)
                raise
            self._tokens[login_id] = token.access_token
            self._expires_ns[login_id] = token.expires_ns()
        except Exception as exc:
            log.warning(
                "login %s: re-authorize failed (%s); reconnecting on next use", login_id, exc
            )
            self._sockets.pop(login_id, None)
            with contextlib.suppress(Exception):
                await sock.close()

    async def close(self) -> None:
        """Close every socket (no reconnects)."""
        self._closing = True
        for task in self._reconnects.values():
            task.cancel()
        self._reconnects.clear()
        socks = list(self._sockets.values())
        self._sockets.clear()
        await asyncio.gather(*(s.close() for s in socks), return_exceptions=True)
