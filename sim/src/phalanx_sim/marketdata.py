"""The market-data WebSocket at ``/md/v1/websocket`` (docs/tradovate-protocol.md §8).

Tradovate serves market data on its own host (``wss://md.tradovateapi.com/v1/websocket``) with
the trading socket's framing: ``o``, ``h``, ``a[...]``, ``c[...]``, client heartbeat ``[]`` and
``authorize`` first. The simulator serves it on the same HTTP server under its own path (the
client takes the address from a setting, so only the URL differs; ADR-0128).

- ``authorize`` accepts a live session's ``mdAccessToken`` or its ``accessToken``;
- ``md/subscribeQuote`` / ``md/unsubscribeQuote`` take ``{"symbol": "MNQZ6"}`` or
  ``{"symbol": <contract id>}``; every other request before ``authorize`` answers 401;
- a subscription gets the current quote at once, then a new one whenever the engine's price of
  the contract moves (the random walk, ``POST /admin/prices``, the engine's own default price):
  ``{"e":"md","d":{"quotes":[{"timestamp","contractId","entries":{"Bid","Offer","Trade"}}]}}``,
  with Trade at the engine's price and Bid/Offer one tick either side.

Price moves are found by comparing the engine's prices with the last quote sent, every
``interval_s``: nothing in the matching engine knows about this socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from starlette.websockets import WebSocket

from phalanx_sim.contracts import ContractInfo
from phalanx_sim.frames import HEARTBEAT, OPEN, encode_event, encode_response
from phalanx_sim.state import Session
from phalanx_sim.times import iso_from_epoch
from phalanx_sim.venue import Venue
from phalanx_sim.ws import Connection, receive_texts

__all__ = ["MarketDataHub", "quote_entries"]

log = logging.getLogger(__name__)

_SUBSCRIBE = "md/subscribequote"
_UNSUBSCRIBE = "md/unsubscribequote"


class _SymbolBody(msgspec.Struct):
    symbol: str | int


def quote_entries(info: ContractInfo, price: float) -> dict[str, dict[str, float | int]]:
    """Bid, Offer and Trade of a contract priced at ``price`` (Bid/Offer one tick away)."""
    tick = info.spec.tick_size
    return {
        "Bid": {"price": round(price - tick, 10), "size": 10},
        "Offer": {"price": round(price + tick, 10), "size": 10},
        "Trade": {"price": price, "size": 1},
    }


class _MdConnection:
    """A market-data socket: the framing of :class:`Connection` plus quote subscriptions."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: contract id -> the price of the last quote sent
        self.quoted: dict[int, float] = {}


class MarketDataHub:
    """Every market-data socket of the venue; :meth:`run` pushes quotes and heartbeats."""

    def __init__(self, venue: Venue, interval_s: float = 0.1) -> None:
        self.venue = venue
        self.interval_s = interval_s
        self.sockets: dict[Connection, _MdConnection] = {}

    # ------------------------------------------------------------------ sockets

    async def serve(self, websocket: WebSocket) -> None:
        """Serve one market-data socket until it closes."""
        await websocket.accept()
        conn = Connection(websocket, self.venue.settings.sim_ws_coalesce)
        md = _MdConnection(conn)
        self.sockets[conn] = md
        async with conn.writing("sim-md-writer"):
            conn.push_frame(OPEN)
            try:
                await receive_texts(
                    websocket, conn, lambda text: self.on_frame(md, text), "md socket"
                )
            finally:
                self.sockets.pop(conn, None)

    def _session(self, token: str) -> Session | None:
        venue = self.venue
        session = venue.authenticate(token)
        if session is not None:
            return session
        now = venue.clock.time()
        for candidate in venue.state.sessions.values():
            if token and candidate.md_token == token and candidate.valid_at(now):
                return candidate
        return None

    def on_frame(self, md: _MdConnection, text: str) -> None:
        """Handle one client frame (heartbeat or request)."""
        conn = md.conn
        request = conn.request_of(text, "md frame")
        if request is None:
            return
        endpoint = request.endpoint.lower()
        if endpoint == "authorize":
            session = self._session(request.body.strip())
            if session is None:
                conn.push(encode_response(401, request.request_id, "Invalid access token"))
                return
            conn.session = session
            conn.push(encode_response(200, request.request_id))
            return
        session = conn.session
        if session is None or not session.valid_at(self.venue.clock.time()):
            conn.push(encode_response(401, request.request_id, "Access is denied"))
            return
        if endpoint not in (_SUBSCRIBE, _UNSUBSCRIBE):
            conn.push(encode_response(404, request.request_id, f"Unknown endpoint {endpoint}"))
            return
        info, error = self._contract(request.body)
        if info is None:
            conn.push(encode_response(400, request.request_id, {"errorText": error}))
            return
        cid = info.contract.id
        conn.push(encode_response(200, request.request_id, {}))
        if endpoint == _UNSUBSCRIBE:
            md.quoted.pop(cid, None)
            return
        price = self.venue.engine.price(info)
        md.quoted[cid] = price
        conn.push(self._quote_event(info, price))

    def _contract(self, body: str) -> tuple[ContractInfo | None, str]:
        try:
            symbol = msgspec.json.decode(body.strip() or "{}", type=_SymbolBody).symbol
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return None, f"Invalid request: {exc}"
        contracts = self.venue.contracts
        info = contracts.by_id(symbol) if isinstance(symbol, int) else contracts.resolve(symbol)
        return (info, "") if info is not None else (None, f"Unknown contract {symbol!r}")

    def _quote_event(self, info: ContractInfo, price: float) -> bytes:
        quote: dict[str, Any] = {
            "timestamp": iso_from_epoch(self.venue.clock.time()),
            "contractId": info.contract.id,
            "entries": quote_entries(info, price),
        }
        return encode_event("md", {"quotes": [quote]})

    # ------------------------------------------------------------------ pushing

    def tick(self, now: float | None = None) -> None:
        """Quote every subscribed contract whose price moved; heartbeats; close idle sockets."""
        now = time.monotonic() if now is None else now
        settings = self.venue.settings
        prices = self.venue.engine.prices
        venue_now = self.venue.clock.time()
        for conn, md in list(self.sockets.items()):
            if conn.closing:
                continue
            if conn.session is not None and not conn.session.valid_at(venue_now):
                expired = conn.session.expires_at <= venue_now
                conn.close(1000, "Closed: access token expired" if expired else "Closed: revoked")
                continue
            idle = settings.sim_ws_idle_timeout_s
            if idle > 0 and now - conn.last_client > idle:
                conn.close(1000, "Closed: no client heartbeat")
                continue
            authorize = settings.sim_ws_authorize_timeout_s
            if authorize > 0 and conn.session is None and now - conn.opened > authorize:
                conn.close(1000, "Closed: not authorized")
                continue
            for cid, sent in list(md.quoted.items()):
                price = prices.get(cid)
                info = self.venue.contracts.by_id(cid)
                if price is None or info is None or price == sent:
                    continue
                md.quoted[cid] = price
                conn.push(self._quote_event(info, price))
                conn.last_sent = now
            if now - conn.last_sent >= settings.sim_ws_heartbeat_s:
                conn.push_frame(HEARTBEAT)
                conn.last_sent = now

    async def run(self) -> None:
        """Run :meth:`tick` every ``interval_s`` (cancel to stop)."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.tick()

    def drop(self) -> int:
        """Drop every market-data socket without a ``c`` frame; returns how many."""
        for conn in self.sockets:
            conn.abort()
        return len(self.sockets)

    def close_all(self, reason: str = "Server stopping") -> None:
        """Close every market-data socket."""
        for conn in list(self.sockets):
            conn.close(1000, reason)
