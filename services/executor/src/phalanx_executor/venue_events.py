"""Turn the venue's ``props`` events into Phalanx events (fills) on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import FillReceived
from phalanx_tradovate import PropsEvent, SyncSnapshot, TradovateSocket, wire

__all__ = ["VenueEventSink"]

log = logging.getLogger(__name__)


class VenueEventSink:
    """Queue of venue events, published in order by one task.

    Fills name only their order; the order (seen earlier on the same socket, or placed by
    this replica) names the account. Contract names are looked up once per contract.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        socket_for: Callable[[str], Awaitable[TradovateSocket]],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._socket_for = socket_for
        self._queue: asyncio.Queue[tuple[str, PropsEvent]] = asyncio.Queue()
        self._order_account: dict[int, int] = {}
        self._contract_names: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.published_fills = 0

    def remember_order(self, order_id: int | None, account_id: int) -> None:
        """Record which account an order belongs to (from our own placement results)."""
        if order_id is not None:
            self._order_account[order_id] = account_id

    def submit(self, login_id: str, event: PropsEvent) -> None:
        """Accept a props event from a socket's reader (non-blocking)."""
        self._queue.put_nowait((login_id, event))

    def start(self) -> None:
        """Start publishing."""
        self._task = asyncio.create_task(self._run(), name="venue-events")

    async def stop(self) -> None:
        """Publish what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 5)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            login_id, event = await self._queue.get()
            try:
                await self._handle(login_id, event)
            except Exception:
                log.exception("venue event from %s failed: %s", login_id, event.entity_type)
            finally:
                self._queue.task_done()

    async def _handle(self, login_id: str, event: PropsEvent) -> None:
        entity = event.decode_entity()
        if isinstance(entity, wire.Order) and entity.accountId is not None:
            self._order_account[entity.id] = entity.accountId
        elif isinstance(entity, wire.Fill) and event.event_type in ("Created", "Snapshot"):
            await self._publish_fill(login_id, entity)

    async def ingest_snapshot(self, login_id: str, snapshot: SyncSnapshot) -> None:
        """Take a sync snapshot: learn order owners, publish fills (duplicates are dropped)."""
        for order in snapshot.orders:
            if order.accountId is not None:
                self._order_account[order.id] = order.accountId
        for fill in snapshot.fills:
            await self._publish_fill(login_id, fill)

    async def _publish_fill(self, login_id: str, fill: wire.Fill) -> None:
        if fill.orderId is None or fill.contractId is None or fill.price is None:
            log.warning("fill %s without order, contract or price; ignored", fill.id)
            return
        account_id = self._order_account.get(fill.orderId)
        if account_id is None:
            log.warning("fill %s: order %s of unknown account; ignored", fill.id, fill.orderId)
            return
        symbol = await self._contract_name(login_id, fill.contractId)
        now = self._clock.time_ns()
        event = FillReceived(
            event_id=ids.new_event_id(),
            ts_event=now,
            ts_init=now,
            fill_id=fill.id,
            order_id=fill.orderId,
            account_id=account_id,
            contract_id=fill.contractId,
            symbol=symbol,
            action=fill.action or "Buy",
            qty=fill.qty or 0,
            price=fill.price,
            venue_timestamp=fill.timestamp or "",
        )
        await self._bus.publish(subjects.fills_subject(account_id), event, msg_id=f"fill-{fill.id}")
        self.published_fills += 1

    async def _contract_name(self, login_id: str, contract_id: int) -> str:
        name = self._contract_names.get(contract_id)
        if name is None:
            sock = await self._socket_for(login_id)
            contract = await sock.contract_item(contract_id)
            name = contract.name
            self._contract_names[contract_id] = name
        return name
