"""Tradovate's market-data socket: quote subscriptions that survive reconnects.

The market-data socket (docs/tradovate-protocol.md §8) has the trading socket's framing and
``authorize``; ``md/subscribeQuote`` / ``md/unsubscribeQuote`` take ``{"symbol": <name or
contract id>}`` and quotes arrive as ``{"e": "md", "d": {"quotes": [...]}}`` events.

:class:`MarketDataClient` keeps one socket connected (:class:`ReconnectingSocket`: capped
backoff, a fresh token per attempt), remembers which contracts are wanted and subscribes them
again on every new socket. It keeps the latest quote per contract; :meth:`MarketDataClient.quote`
answers only while connected, and a new socket starts with no quotes (so nothing from before a
drop is served as current).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from phalanx_tradovate.errors import ConnectionLost, TradovateError
from phalanx_tradovate.frames import EventMessage
from phalanx_tradovate.reconnecting import ReconnectingSocket
from phalanx_tradovate.ws import TokenSource, TradovateSocket

__all__ = ["MarketDataClient", "OnQuote", "Quote", "parse_quotes"]

log = logging.getLogger(__name__)

SUBSCRIBE = "md/subscribeQuote"
UNSUBSCRIBE = "md/unsubscribeQuote"


@dataclass(frozen=True, slots=True)
class Quote:
    """One contract's quote: the entries Phalanx reads, and when it arrived (local clock)."""

    contract_id: int
    timestamp: str
    bid: Decimal | None
    offer: Decimal | None
    trade: Decimal | None
    received_ns: int


OnQuote = Callable[[Quote], None]


def _price(entries: dict[str, Any], name: str) -> Decimal | None:
    entry = entries.get(name)
    if not isinstance(entry, dict):
        return None
    price = entry.get("price")
    if price is None or isinstance(price, bool):
        return None
    try:
        return Decimal(str(price))
    except InvalidOperation:
        return None


def parse_quotes(data: Any, received_ns: int) -> list[Quote]:
    """The quotes of an ``md`` event's ``d`` (malformed items are skipped)."""
    if not isinstance(data, dict) or not isinstance(data.get("quotes"), list):
        return []
    quotes: list[Quote] = []
    for item in data["quotes"]:
        if not isinstance(item, dict):
            continue
        contract_id = item.get("contractId")
        entries = item.get("entries")
        if not isinstance(contract_id, int) or not isinstance(entries, dict):
            continue
        quotes.append(
            Quote(
                contract_id=contract_id,
                timestamp=str(item.get("timestamp", "")),
                bid=_price(entries, "Bid"),
                offer=_price(entries, "Offer"),
                trade=_price(entries, "Trade"),
                received_ns=received_ns,
            )
        )
    return quotes


class MarketDataClient:
    """Quote subscriptions on Tradovate's market-data socket, kept across reconnects.

    Args:
        url: the market-data socket (``wss://md.tradovateapi.com/v1/websocket``).
        token_source: awaited before each connection attempt for the token to authorize with.
        on_quote: called for every quote received (after it is stored).
        now_ns: the clock stamping ``received_ns``.
        socket_kwargs: passed to every :class:`TradovateSocket` (``heartbeat_s``, …), and
            ``backoff_s`` / ``max_backoff_s`` to the :class:`ReconnectingSocket`.
    """

    def __init__(
        self,
        url: str,
        token_source: TokenSource,
        *,
        on_quote: OnQuote | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        **socket_kwargs: Any,
    ) -> None:
        self.url = url
        self.on_quote = on_quote
        self._now_ns = now_ns
        self._wanted: set[int] = set()
        #: contract id -> latest quote on the current socket
        self.quotes: dict[int, Quote] = {}
        #: contract id -> why the venue refused its subscription
        self.refused: dict[int, str] = {}
        # the newest socket, set before it subscribes what is wanted: a contract wanted while
        # it does so is sent by subscribe() itself, never missed
        self._current: TradovateSocket | None = None
        self._keeper = ReconnectingSocket(
            url,
            token_source,
            on_connected=self._connected,
            on_event=self._on_event,
            **socket_kwargs,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (in the background)."""
        self._keeper.start()

    async def stop(self) -> None:
        """Close the socket and stop reconnecting (idempotent)."""
        await self._keeper.stop()

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until a socket is connected and the wanted contracts subscribed.

        Raises:
            TimeoutError: when ``timeout_s`` passes first.
        """
        await self._keeper.wait_connected(timeout_s)

    @property
    def connected(self) -> bool:
        """Whether a socket is open and authorized."""
        sock = self._current
        return sock is not None and sock.connected

    @property
    def connects(self) -> int:
        """How many sockets were connected so far (1 + reconnects)."""
        return self._keeper.connects

    @property
    def wanted(self) -> frozenset[int]:
        """The contracts subscribed (or to subscribe on the next socket)."""
        return frozenset(self._wanted)

    def quote(self, contract_id: int) -> Quote | None:
        """The latest quote of a contract on the current socket (``None`` when disconnected)."""
        return self.quotes.get(contract_id) if self.connected else None

    # -- subscriptions ------------------------------------------------------------------------

    async def subscribe(self, contract_id: int) -> None:
        """Want quotes of a contract: subscribe now if connected, else on the next socket."""
        if contract_id in self._wanted:
            return
        self._wanted.add(contract_id)
        sock = self._current
        if sock is not None and sock.connected:
            await self._send(sock, SUBSCRIBE, contract_id)

    async def unsubscribe(self, contract_id: int) -> None:
        """Stop wanting quotes of a contract (and forget its quote)."""
        if contract_id not in self._wanted:
            return
        self._wanted.discard(contract_id)
        self.quotes.pop(contract_id, None)
        self.refused.pop(contract_id, None)
        sock = self._current
        if sock is not None and sock.connected:
            await self._send(sock, UNSUBSCRIBE, contract_id)

    async def _send(self, sock: TradovateSocket, endpoint: str, contract_id: int) -> None:
        try:
            await sock.request(endpoint, {"symbol": contract_id})
        except ConnectionLost:
            return  # the next socket subscribes what is wanted
        except TradovateError as exc:
            if endpoint == SUBSCRIBE:
                self.refused[contract_id] = f"{type(exc).__name__}: {exc}"
            log.warning("%s %d refused: %s", endpoint, contract_id, exc)
        else:
            if endpoint == SUBSCRIBE:
                self.refused.pop(contract_id, None)

    async def _connected(self, sock: TradovateSocket) -> None:
        self._current = sock
        self.quotes.clear()
        for contract_id in sorted(self._wanted):
            await self._send(sock, SUBSCRIBE, contract_id)

    def _on_event(self, event: EventMessage) -> None:
        if event.kind != "md":
            return
        for quote in parse_quotes(event.data, self._now_ns()):
            if quote.contract_id not in self._wanted:
                continue
            self.quotes[quote.contract_id] = quote
            if self.on_quote is not None:
                self.on_quote(quote)
