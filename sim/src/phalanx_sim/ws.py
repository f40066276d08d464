"""The trading WebSocket at ``/v1/websocket``: framing, authorization, sync and props events.

One :class:`Connection` per socket with a writer task: everything queued for a socket while the
previous frame was being written goes out in one ``a[...]`` frame (unless ``sim_ws_coalesce`` is
off), in the order it was queued. A response is queued before the props events its request
caused. The :class:`Hub` routes entity changes to the sockets subscribed (by ``user/syncrequest``)
to the account, encoding each event once, and runs the heartbeat/idle housekeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

import msgspec
from starlette.websockets import WebSocket

from phalanx_common.tasks import OwnedTasks
from phalanx_sim.entities import Entity
from phalanx_sim.frames import (
    HEARTBEAT,
    OPEN,
    ClientRequest,
    array_frame,
    close_frame,
    encode_event,
    encode_props,
    encode_response,
    parse_client_frame,
)
from phalanx_sim.schemas import SyncRequestBody
from phalanx_sim.state import Session
from phalanx_sim.venue import Reply, Subscription, Venue

__all__ = ["ConnectRecord", "Connection", "Hub", "decode_sync_request", "receive_texts"]

log = logging.getLogger(__name__)


class ConnectRecord(NamedTuple):
    """A socket opened (``open``) or authorized (``authorize``), at venue time ``at``."""

    at: float
    kind: str
    user_id: int | None


#: most recent socket opens and authorizations kept for ``/admin/connects``
CONNECT_LOG_MAX = 100_000


class Connection:
    """One client socket: its session, subscriptions and outgoing queue."""

    def __init__(self, websocket: WebSocket, coalesce: bool) -> None:
        now = time.monotonic()
        self.websocket = websocket
        self.client = websocket.client.host if websocket.client is not None else ""
        self.aborted = False
        self.coalesce = coalesce
        self.session: Session | None = None
        self.opened = now
        self.last_client = now
        self.last_sent = now
        self.client_heartbeats = 0
        self.accounts: set[int] = set()
        self.closing = False
        self._out: list[bytes | str] = []
        self._wake = asyncio.Event()

    @property
    def user_id(self) -> int | None:
        """The authorized user, if any."""
        return None if self.session is None else self.session.user_id

    def push(self, message: bytes) -> None:
        """Queue one encoded message for the next ``a[...]`` frame."""
        if self.closing:
            return
        self._out.append(message)
        self._wake.set()

    def push_frame(self, frame: str) -> None:
        """Queue a control frame (``o``, ``h`` or ``c[...]``)."""
        if self.closing:
            return
        self._out.append(frame)
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        """Send ``c[code,"reason"]`` after what is queued, then close the socket."""
        self.push_frame(close_frame(code, reason))
        self.closing = True

    def abort(self) -> None:
        """Drop the connection without a ``c`` frame (the socket-drop fault)."""
        self.aborted = True
        self.closing = True
        self._out.clear()
        self._wake.set()

    def request_of(self, text: str, what: str) -> ClientRequest | None:
        """The request a client frame carries; ``None`` for a heartbeat (counted) or a
        malformed frame (logged as a malformed ``what``)."""
        try:
            request = parse_client_frame(text)
        except ValueError:
            log.debug("malformed %s %r", what, text[:200])
            return None
        if request is None:
            self.client_heartbeats += 1
        return request

    @contextlib.asynccontextmanager
    async def writing(self, name: str) -> AsyncIterator[None]:
        """Run :meth:`run_writer` as a task called ``name`` while the block runs; stopped
        (cancelled and awaited) when it ends."""
        tasks = OwnedTasks(name)
        tasks.spawn(self.run_writer(), name)
        try:
            yield
        finally:
            await tasks.stop()

    async def run_writer(self) -> None:
        """Write queued frames until the socket closes."""
        websocket = self.websocket
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.aborted:
                    await websocket.close(code=1011)
                    return
                out, self._out = self._out, []
                if await self._write(out):
                    return
                self.last_sent = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-write
            log.debug("websocket writer stopped", exc_info=True)
        finally:
            self.closing = True

    async def _write(self, out: list[bytes | str]) -> bool:
        """Send the queued frames (events coalesced into one array frame when enabled);
        ``True`` once a close frame was sent and the socket closed."""
        websocket = self.websocket
        batch: list[bytes] = []
        for item in out:
            if isinstance(item, bytes):
                if self.coalesce:
                    batch.append(item)
                else:
                    await websocket.send_text(array_frame([item]))
                continue
            if batch:
                await websocket.send_text(array_frame(batch))
                batch = []
            await websocket.send_text(item)
            if item.startswith("c"):
                await websocket.close(code=1000)
                return True
        if batch:
            await websocket.send_text(array_frame(batch))
        return False


async def receive_texts(
    websocket: WebSocket, conn: Connection, on_text: Callable[[str], None], what: str
) -> None:
    """Hand each text the client sends to ``on_text`` until it disconnects (binary frames are
    decoded as UTF-8); a broken peer ends the loop quietly, never the venue."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode(errors="replace")
            conn.last_client = time.monotonic()
            on_text(text)
    except Exception:
        log.debug("%s receive loop stopped", what, exc_info=True)


class Hub:
    """All sockets of the venue; the :class:`~phalanx_sim.matching.EventSink` of the engine."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.settings = venue.settings
        self.connections: set[Connection] = set()
        # authorized sockets per user, oldest first (for the connection quota)
        self.by_user: dict[int, dict[Connection, None]] = {}
        self._subs: dict[int, dict[Connection, frozenset[str] | None]] = {}
        self._holding = False
        self._held: list[tuple[Connection, bytes]] = []
        #: when sockets were opened and authorized (to measure reconnect storms)
        self.connects: deque[ConnectRecord] = deque(maxlen=CONNECT_LOG_MAX)
        venue.sink = self
        venue.on_session_closed = self.close_session

    # ------------------------------------------------------------------ events

    def publish(self, account_id: int, entity_type: str, event_type: str, entity: Entity) -> None:
        """Send a ``props`` event to every socket subscribed to the account and type."""
        targets = self._subs.get(account_id)
        if not targets:
            return
        data: bytes | None = None
        for conn, types in targets.items():
            if types is not None and entity_type not in types:
                continue
            if data is None:
                data = encode_props(entity_type, event_type, entity)
            if self._holding:
                self._held.append((conn, data))
            else:
                conn.push(data)

    def subscribe(self, conn: Connection, subscription: Subscription) -> None:
        """Route the subscription's accounts (and entity types) to a socket."""
        for account_id in subscription.account_ids:
            self._subs.setdefault(account_id, {})[conn] = subscription.entity_types
            conn.accounts.add(account_id)

    def shutdown(self, reason_code: str, reason: str, user_id: int | None = None) -> int:
        """Send a ``shutdown`` event and close the sockets (of one user, or all).

        Returns:
            How many sockets were told.
        """
        told = 0
        for conn in list(self.connections):
            if user_id is not None and conn.user_id != user_id:
                continue
            conn.push(encode_event("shutdown", {"reasonCode": reason_code, "reason": reason}))
            conn.close(1000, reason)
            told += 1
        return told

    def close_session(self, user_id: int, session_id: int, reason: str) -> None:
        """Close the sockets authorized by a session that the venue closed."""
        for conn in list(self.by_user.get(user_id, ())):
            session = conn.session
            if session is not None and session.session_id == session_id:
                conn.close(1000, reason)

    def drop(self, user_id: int | None = None) -> int:
        """Drop sockets (of one user, or all) without a ``c`` frame; returns how many."""
        dropped = 0
        for conn in list(self.connections):
            if user_id is None or conn.user_id == user_id:
                conn.abort()
                dropped += 1
        return dropped

    # ------------------------------------------------------------------ sockets

    async def serve(self, websocket: WebSocket) -> None:
        """Serve one socket until it closes."""
        await websocket.accept()
        conn = Connection(websocket, self.settings.sim_ws_coalesce)
        self.connections.add(conn)
        self.connects.append(ConnectRecord(self.venue.clock.time(), "open", None))
        async with conn.writing("sim-ws-writer"):
            conn.push_frame(OPEN)
            try:
                await receive_texts(
                    websocket, conn, lambda text: self.on_frame(conn, text), "websocket"
                )
            finally:
                self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._unlist(conn)
        for account_id in conn.accounts:
            targets = self._subs.get(account_id)
            if targets is not None:
                targets.pop(conn, None)
                if not targets:
                    del self._subs[account_id]
        conn.accounts.clear()

    def _unlist(self, conn: Connection) -> None:
        if conn.session is None:
            return
        own = self.by_user.get(conn.session.user_id)
        if own is not None:
            own.pop(conn, None)
            if not own:
                del self.by_user[conn.session.user_id]

    def _authorized(self, conn: Connection, session: Session) -> None:
        """Attach a session to a socket and enforce the per-user connection quota."""
        if conn.session is not None and conn.session.user_id != session.user_id:
            self._unlist(conn)
        conn.session = session
        own = self.by_user.setdefault(session.user_id, {})
        own.setdefault(conn, None)
        limit = self.settings.sim_max_sockets_per_user
        while limit > 0 and len(own) > limit:
            oldest = next(iter(own))
            del own[oldest]
            oldest.push(
                encode_event(
                    "shutdown",
                    {
                        "reasonCode": "ConnectionQuotaReached",
                        "reason": f"More than {limit} connections: closing the oldest",
                    },
                )
            )
            oldest.close(1000, "ConnectionQuotaReached")
            if oldest.session is not None:
                self.venue.revoke_token(oldest.session)

    def _respond(
        self, conn: Connection, request_id: int, reply: Reply, held: list[tuple[Connection, bytes]]
    ) -> None:
        """Queue a response (unless dropped) and the events it caused, maybe after a delay."""

        def send() -> None:
            if not reply.drop:
                conn.push(encode_response(reply.status, request_id, reply.payload))
            for target, data in held:
                target.push(data)

        if reply.delay > 0:
            asyncio.get_running_loop().call_later(reply.delay, send)
        else:
            send()

    def on_frame(self, conn: Connection, text: str) -> None:
        """Handle one client frame (heartbeat or request)."""
        request = conn.request_of(text, "frame")
        if request is None:
            return
        venue = self.venue
        endpoint = request.endpoint.lower()
        if endpoint == "authorize":
            session = venue.authenticate(request.body.strip())
            if session is None:
                conn.push(encode_response(401, request.request_id, "Invalid access token"))
                venue.record(endpoint, None, "ws", 401)
                return
            now = venue.clock.time()
            refused = venue.admit(endpoint, session, "", "ws", conn.client, now)
            if refused is not None:
                conn.push(encode_response(refused.status, request.request_id, refused.payload))
                venue.record(endpoint, session.user_id, "ws", refused.status)
                return
            self._authorized(conn, session)
            self.connects.append(ConnectRecord(now, "authorize", session.user_id))
            conn.push(encode_response(200, request.request_id))
            venue.record(endpoint, session.user_id, "ws", 200)
            return
        session = conn.session
        if session is not None and not session.valid_at(venue.clock.time()):
            session = None
        if endpoint == "user/syncrequest" and session is not None:
            self._sync(conn, session, request.request_id, request.body)
            return
        self._holding = True
        try:
            reply = venue.handle(
                request.endpoint, session, request.query, request.body, "ws", conn.client
            )
        finally:
            self._holding = False
            held, self._held = self._held, []
        self._respond(conn, request.request_id, reply, held)

    def _sync(self, conn: Connection, session: Session, request_id: int, body: str) -> None:
        venue = self.venue
        key = "user/syncrequest"
        now = venue.clock.time()
        refused = venue.admit(key, session, body, "ws", conn.client, now)
        if refused is not None:
            conn.push(encode_response(refused.status, request_id, refused.payload))
            venue.record(key, session.user_id, "ws", refused.status)
            return
        venue.settle(key, session, body, Reply(200), conn.client, now)
        try:
            request = decode_sync_request(body)
        except ValueError as exc:
            conn.push(encode_response(400, request_id, {"errorText": str(exc)}))
            venue.record("user/syncrequest", session.user_id, "ws", 400)
            return
        data, subscription = venue.snapshot(session, request)
        conn.push(encode_response(200, request_id, data))
        self.subscribe(conn, subscription)
        venue.record("user/syncrequest", session.user_id, "ws", 200)

    # ------------------------------------------------------------------ housekeeping

    def housekeeping(self, now: float | None = None) -> None:
        """Heartbeats for quiet sockets; close idle or never-authorized ones."""
        now = time.monotonic() if now is None else now
        settings = self.settings
        idle = settings.sim_ws_idle_timeout_s
        authorize = settings.sim_ws_authorize_timeout_s
        beat = settings.sim_ws_heartbeat_s
        venue_now = self.venue.clock.time()
        for conn in list(self.connections):
            if conn.closing:
                continue
            if conn.session is not None and not conn.session.valid_at(venue_now):
                expired = conn.session.expires_at <= venue_now
                conn.close(1000, "Closed: access token expired" if expired else "Closed: revoked")
            elif idle > 0 and now - conn.last_client > idle:
                conn.close(1000, "Closed: no client heartbeat")
            elif authorize > 0 and conn.session is None and now - conn.opened > authorize:
                conn.close(1000, "Closed: not authorized")
            elif now - conn.last_sent >= beat:
                conn.push_frame(HEARTBEAT)
                conn.last_sent = now

    async def run(self) -> None:
        """Run :meth:`housekeeping` forever (cancel to stop)."""
        interval = max(0.05, min(0.5, self.settings.sim_ws_heartbeat_s / 5))
        while True:
            await asyncio.sleep(interval)
            self.housekeeping()

    def close_all(self, reason: str = "Server reset") -> None:
        """Close every socket."""
        for conn in list(self.connections):
            conn.close(1000, reason)

    def reset(self) -> None:
        """Close every socket and drop all subscriptions at once."""
        self.close_all()
        self._subs.clear()
        self.connects.clear()
        for conn in self.connections:
            conn.accounts.clear()


def decode_sync_request(body: str) -> SyncRequestBody:
    """Decode a syncrequest body (empty means ``{}``).

    Raises:
        ValueError: if it is not a valid SyncRequest.
    """
    try:
        return msgspec.json.decode(body.strip() or "{}", type=SyncRequestBody)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"Invalid request: {exc}") from exc
