"""What this replica knows of the venue, kept current by the sync snapshot and ``props`` events.

Per account: positions by contract, working orders (with their ``orderType``, from the order
versions), cash (realized P&L); per ``clOrdId``: the order it created. Every fill is published to
the bus as :class:`FillReceived` through a retrying :class:`FillOutbox` (the venue's fill id is
the message id, so re-syncs and re-deliveries are dropped); a fill of an order this view does
not know is attributed by looking the order up at the venue (``order/item``), and published to
``fills.unattributed`` with what is known when even that fails (ADR-0061). Workers read this
view to decide exits, reversals and cancels, and wait on it (e.g. for a position to become
flat or known). A fill of an order placed here is a ``fill`` span in the trace of the request
that placed it, so the ledger's projection of it joins the signal's trace (ADR-0070).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from decimal import Decimal

from opentelemetry import context as otel_context
from opentelemetry import trace

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import FillReceived
from phalanx_common.tasks import cancel_and_wait
from phalanx_common.telemetry import span
from phalanx_executor.contract_catalog import ContractCatalog
from phalanx_executor.fill_outbox import FillOutbox
from phalanx_tradovate import PropsEvent, SyncSnapshot, TradovateError, TradovateSocket, wire

__all__ = ["WORKING", "VenueView"]

log = logging.getLogger(__name__)

WORKING = frozenset({"Working", "Suspended", "PendingNew", "PendingReplace"})
FINISHED = frozenset({"Filled", "Canceled", "Rejected", "Expired", "Completed"})


class VenueView:
    """The replica's view of its logins' accounts at the venue."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        socket_for: Callable[[str], Awaitable[TradovateSocket]],
        permit: Callable[[str], Awaitable[None]] | None = None,
        honour: Callable[[str, TradovateError], Awaitable[None]] | None = None,
        keep_finished: int = 50_000,
        outbox: FillOutbox | None = None,
        event_attempts: int = 5,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._socket_for = socket_for
        self._permit = permit
        self._honour = honour  # a penalty or lockout on a lookup blocks the login (ADR-0056)
        self._queue: asyncio.Queue[tuple[str, PropsEvent]] = asyncio.Queue()
        self._order_account: dict[int, int] = {}
        self._orders: dict[int, dict[int, wire.Order]] = {}  # account -> order id -> order
        self._cl_ord: dict[str, int] = {}  # clOrdId -> order id
        self._cl_ord_of: dict[int, str] = {}  # order id -> clOrdId
        self._order_types: dict[int, str] = {}  # order id -> orderType of its latest version
        self._versions: dict[int, wire.OrderVersion] = {}  # order id -> its latest version
        # order id or clOrdId of a request sent here -> its trace (the most recent only)
        self._traces: OrderedDict[int | str, otel_context.Context] = OrderedDict()
        self._unseen: dict[int, int] = {}  # order placed here -> account, until its props arrive
        self._synced: set[int] = set()  # accounts a sync snapshot has reported
        self._finished: OrderedDict[int, int] = OrderedDict()  # finished order -> account
        self._keep_finished = keep_finished
        self._positions: dict[tuple[int, int], int] = {}  # (account, contract) -> netPos
        self._realized: dict[int, Decimal] = {}  # account -> realized P&L today
        self.contracts = ContractCatalog(socket_for, permit, honour)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.outbox = outbox or FillOutbox(bus)
        self._event_attempts = event_attempts
        self.unattributed_fills = 0

    @property
    def published_fills(self) -> int:
        """Fills the FILLS stream has acknowledged."""
        return self.outbox.published

    # -- queries ------------------------------------------------------------------------------

    def position(self, account_id: int, contract_id: int) -> int:
        """Signed net position (0 when none is known); see :meth:`known_position`."""
        return self._positions.get((account_id, contract_id), 0)

    def known_position(self, account_id: int, contract_id: int) -> int | None:
        """Signed net position, or None while this view cannot know it (ADR-0060).

        Unknown while no sync snapshot has reported the account yet, and while an order of the
        account in the contract may still fill without this view having seen it: an order
        placed here whose props have not arrived, one still ``PendingNew``, or a ``Working``
        Market order (or one whose type is not known yet) — a fill not yet seen.
        """
        if account_id not in self._synced:
            return None
        if any(a == account_id for a in self._unseen.values()):
            return None
        for order in self._orders.get(account_id, {}).values():
            if order.contractId == contract_id and self._fill_pending(order):
                return None
        return self._positions.get((account_id, contract_id), 0)

    async def wait_known_position(
        self, login_id: str, account_id: int, contract_id: int, timeout_s: float
    ) -> int | None:
        """:meth:`known_position`, waiting up to ``timeout_s`` for it to become known.

        An account no snapshot has reported by then (its snapshot is late, or the account was
        linked after the login synced) has its positions read from the venue
        (``position/deps``); None when that fails too or a fill is still unseen.
        """
        await self.wait_for(
            lambda: self.known_position(account_id, contract_id) is not None, timeout_s
        )
        if account_id not in self._synced:
            await self._read_positions(login_id, account_id)
        return self.known_position(account_id, contract_id)

    async def _read_positions(self, login_id: str, account_id: int) -> None:
        try:
            sock = await self._socket_for(login_id)
            if self._permit is not None:
                await self._permit(login_id)
            positions = await sock.position_deps(account_id)
        except Exception as exc:
            log.warning("account %s: positions not read from the venue: %r", account_id, exc)
            return
        for position in positions:
            self._apply_position(position)
        self._synced.add(account_id)
        self._notify()

    def _fill_pending(self, order: wire.Order) -> bool:
        if order.ordStatus in (None, "PendingNew", "Unknown"):
            return True
        if order.ordStatus != "Working":
            return False  # finished, or a suspended bracket leg (no fill before its parent's)
        kind = self._order_types.get(order.id)
        return kind is None or kind == "Market"

    def resolved(self, order_id: int) -> bool:
        """Whether this order's effect on the position is known: it finished (filled, canceled,
        rejected), or it rests working with no fill due (not a Market order). "Settled" is not
        "filled": a Market order that is merely ``Working`` is not resolved."""
        if order_id in self._finished:
            return True
        account = self._order_account.get(order_id)
        order = self._orders.get(account, {}).get(order_id) if account is not None else None
        return order is not None and not self._fill_pending(order)

    def version(self, order_id: int) -> wire.OrderVersion | None:
        """The latest version (quantity, type, prices) of an order, once seen (while it is not
        finished)."""
        return self._versions.get(order_id)

    def finished(self, order_id: int) -> bool:
        """Whether the venue reported this order finished (among the recent ``keep_finished``)."""
        return order_id in self._finished

    def held(self) -> dict[str, int]:
        """How many entries the per-order structures hold (bounded memory, ADR-0160): order
        and version records only for orders not finished, a few ids for the finished."""
        return {
            "orders": sum(len(orders) for orders in self._orders.values()),
            "versions": len(self._versions),
            "order_types": len(self._order_types),
            "order_accounts": len(self._order_account),
            "cl_ord_ids": len(self._cl_ord),
            "finished": len(self._finished),
            "unseen": len(self._unseen),
            "traces": len(self._traces),
        }

    def working_orders(self, account_id: int, contract_id: int | None = None) -> list[wire.Order]:
        """Working (or suspended bracket) orders of an account, optionally of one contract."""
        return [
            o
            for o in self._orders.get(account_id, {}).values()
            if o.ordStatus in WORKING and (contract_id is None or o.contractId == contract_id)
        ]

    def order_type(self, order_id: int) -> str | None:
        """The ``orderType`` of an order's latest version (None until its version is seen)."""
        return self._order_types.get(order_id)

    def open_contracts(self, account_id: int) -> set[int]:
        """Contracts in which the account has a position or working orders."""
        found = {c for (a, c), pos in self._positions.items() if a == account_id and pos != 0}
        found |= {o.contractId for o in self.working_orders(account_id) if o.contractId is not None}
        return found

    def realized_pnl(self, account_id: int) -> Decimal:
        """Realized P&L of the account as the venue reports it (cash balance)."""
        return self._realized.get(account_id, Decimal(0))

    def order_for(self, cl_ord_id: str) -> int | None:
        """The order created by a command with this ``clOrdId``, if this view has seen it."""
        return self._cl_ord.get(cl_ord_id)

    def accounts(self) -> set[int]:
        """Every account this view has seen."""
        return set(self._orders) | {a for a, _ in self._positions} | set(self._realized)

    async def contract_id(self, login_id: str, symbol: str) -> int:
        """The venue's id of a dated symbol (:meth:`ContractCatalog.contract_id`)."""
        return await self.contracts.contract_id(login_id, symbol)

    def settled(self, order_id: int) -> bool:
        """Whether the venue has reported this order past ``PendingNew`` (working or done)."""
        if order_id in self._finished:
            return True
        account = self._order_account.get(order_id)
        order = self._orders.get(account, {}).get(order_id) if account is not None else None
        return order is not None and order.ordStatus not in (None, "PendingNew", "Unknown")

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds after some venue update; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return True

    # -- feeding ------------------------------------------------------------------------------

    def remember_order(self, order_id: int | None, account_id: int, cl_ord_id: str = "") -> None:
        """Record an order this replica placed (before its props arrive), and the trace of the
        request that placed it (its fills continue that trace)."""
        if order_id is None:
            return
        self._order_account[order_id] = account_id
        self.trace_request(order_id)
        seen = order_id in self._orders.get(account_id, {}) or order_id in self._finished
        if not seen:
            self._unseen[order_id] = account_id  # its fill may come before its props
        if cl_ord_id:
            self._cl_ord[cl_ord_id] = order_id
            self._cl_ord_of[order_id] = cl_ord_id

    def trace_request(self, key: int | str) -> None:
        """Remember the current trace for the order ``key`` names (its id, or the clOrdId it is
        sent with, before any answer), so its fills continue that trace (bounded memory)."""
        if not trace.get_current_span().get_span_context().is_valid:
            return
        self._traces[key] = otel_context.get_current()
        self._traces.move_to_end(key)
        while len(self._traces) > self._keep_finished:
            self._traces.popitem(last=False)

    def _trace_of(self, order_id: int) -> otel_context.Context | None:
        placed_in = self._traces.get(order_id)
        if placed_in is None:  # its fill came before the answer: the clOrdId names it
            placed_in = self._traces.get(self._cl_ord_of.get(order_id, ""))
        return placed_in

    def submit(self, login_id: str, event: PropsEvent) -> None:
        """Apply a props event at once (called by a socket's reader); fills are queued for the bus.

        State is applied synchronously, so when a request's response and the events it caused
        arrive together, a worker resuming after the response already sees them.
        """
        try:
            entity = event.decode_entity()
        except Exception:
            log.exception("undecodable %s event from %s", event.entity_type, login_id)
            return
        if isinstance(entity, wire.Fill):
            if event.event_type in ("Created", "Snapshot"):
                self._queue.put_nowait((login_id, event))
            return
        if self._apply(entity):
            self._notify()

    async def ingest_snapshot(self, login_id: str, snapshot: SyncSnapshot) -> None:
        """Take a sync snapshot: orders, commands, positions, cash, contracts; publish fills."""
        for contract in snapshot.contracts:
            self.contracts.learn(contract)
        for account in snapshot.accounts:
            self._synced.add(account.id)
        for order in snapshot.orders:
            self._apply_order(order)
        for version in sorted(snapshot.orderVersions, key=lambda v: v.id):
            self._apply_order_version(version)
        for command in snapshot.commands:
            self._apply_command(command)
        for position in snapshot.positions:
            self._apply_position(position)
        for cash in snapshot.cashBalances:
            self._apply_cash(cash)
        self._synced.update(p.accountId for p in snapshot.positions if p.accountId is not None)
        self._synced.update(o.accountId for o in snapshot.orders if o.accountId is not None)
        self._notify()
        # the snapshot names every order's account, even of orders this view has already
        # forgotten (bounded memory): no venue lookup for their fills
        owners = {o.id: o.accountId for o in snapshot.orders if o.accountId is not None}
        for fill in snapshot.fills:
            await self._publish_fill(login_id, fill, owners.get(fill.orderId or 0))

    def start(self) -> None:
        """Start applying queued events."""
        self._task = asyncio.create_task(self._run(), name="venue-view")
        self.outbox.start()

    async def stop(self) -> None:
        """Apply what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 5)
        await cancel_and_wait(self._task)
        self._task = None
        await self.outbox.stop()

    async def _run(self) -> None:
        while True:
            login_id, event = await self._queue.get()
            try:
                await self._handle_with_retries(login_id, event)
            finally:
                self._queue.task_done()

    async def _handle_with_retries(self, login_id: str, event: PropsEvent) -> None:
        """A fill whose contract or order lookup fails is tried again (bounded), never dropped
        silently: after the last attempt it is logged as an error."""
        delay = 0.2
        for attempt in range(1, self._event_attempts + 1):
            try:
                await self._handle(login_id, event)
                return
            except Exception:
                if attempt == self._event_attempts:
                    log.exception(
                        "venue event from %s failed %d times, given up: %s",
                        login_id,
                        attempt,
                        event.entity_type,
                    )
                    return
                log.warning("venue event from %s failed; retrying", login_id, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _apply(self, entity: object) -> bool:
        if isinstance(entity, wire.Order):
            self._apply_order(entity)
        elif isinstance(entity, wire.OrderVersion):
            self._apply_order_version(entity)
        elif isinstance(entity, wire.Command):
            self._apply_command(entity)
        elif isinstance(entity, wire.Position):
            self._apply_position(entity)
        elif isinstance(entity, wire.CashBalance):
            self._apply_cash(entity)
        elif isinstance(entity, wire.Contract):
            self.contracts.learn(entity)
        else:
            return False
        return True

    async def _handle(self, login_id: str, event: PropsEvent) -> None:
        entity = event.decode_entity()
        if isinstance(entity, wire.Fill):
            await self._publish_fill(login_id, entity)

    def _apply_order(self, order: wire.Order) -> None:
        if order.accountId is None:
            return
        self._order_account[order.id] = order.accountId
        self._unseen.pop(order.id, None)
        orders = self._orders.setdefault(order.accountId, {})
        if order.ordStatus in FINISHED:
            # A finished order no longer moves the position nor rests: its records go at once
            # (every later scan of the account's orders skips them); its account and clOrdId
            # stay among the recent finished, for late fills and lookups (ADR-0160).
            orders.pop(order.id, None)
            self._versions.pop(order.id, None)
            self._order_types.pop(order.id, None)
            self._finished[order.id] = order.accountId
            self._forget_oldest_finished()
            return
        orders[order.id] = order

    def _forget_oldest_finished(self) -> None:
        # Bounded memory: only the most recent finished orders are kept; anything older is
        # looked up at the venue when needed (clOrdId lookups fall back to order/deps).
        while len(self._finished) > self._keep_finished:
            order_id, account_id = self._finished.popitem(last=False)
            self._orders.get(account_id, {}).pop(order_id, None)
            self._order_account.pop(order_id, None)
            self._order_types.pop(order_id, None)
            self._versions.pop(order_id, None)
            cl_ord_id = self._cl_ord_of.pop(order_id, None)
            if cl_ord_id is not None:
                self._cl_ord.pop(cl_ord_id, None)

    def _apply_order_version(self, version: wire.OrderVersion) -> None:
        if version.orderId is None or version.orderId in self._finished:
            return
        if version.orderType is not None:
            self._order_types[version.orderId] = version.orderType
        known = self._versions.get(version.orderId)
        if known is None or known.id <= version.id:
            self._versions[version.orderId] = version

    def _apply_command(self, command: wire.Command) -> None:
        if command.clOrdId and command.orderId is not None and command.commandType in (None, "New"):
            self._cl_ord[command.clOrdId] = command.orderId
            self._cl_ord_of[command.orderId] = command.clOrdId

    def _apply_position(self, position: wire.Position) -> None:
        if position.accountId is None or position.contractId is None:
            return
        self._positions[(position.accountId, position.contractId)] = position.netPos or 0

    def _apply_cash(self, cash: wire.CashBalance) -> None:
        if cash.accountId is not None and cash.realizedPnL is not None:
            self._realized[cash.accountId] = cash.realizedPnL

    async def _publish_fill(self, login_id: str, fill: wire.Fill, owner: int | None = None) -> None:
        if fill.orderId is None or fill.contractId is None or fill.price is None:
            log.warning("fill %s without order, contract or price; ignored", fill.id)
            return
        placed_in = self._trace_of(fill.orderId)
        if placed_in is None:  # not placed here (or forgotten): no trace to continue
            await self._publish_fill_of(login_id, fill, owner)
            return
        attributes = {"phalanx.fill_id": fill.id, "phalanx.order_id": fill.orderId}
        with span("fill", attributes, parent=placed_in):
            await self._publish_fill_of(login_id, fill, owner)

    async def _publish_fill_of(self, login_id: str, fill: wire.Fill, owner: int | None) -> None:
        assert fill.orderId is not None
        assert fill.contractId is not None
        assert fill.price is not None
        account_id = self._order_account.get(fill.orderId, owner)
        if account_id is None:
            account_id = await self._order_account_at_venue(login_id, fill.orderId)
        symbol = await self.contracts.name(login_id, fill.contractId)
        now = self._clock.time_ns()
        event = FillReceived(
            event_id=ids.new_event_id(),
            ts_event=now,
            ts_init=now,
            fill_id=fill.id,
            order_id=fill.orderId,
            account_id=account_id,  # 0: not attributed (published on fills.unattributed)
            contract_id=fill.contractId,
            symbol=symbol,
            action=fill.action or "Buy",
            qty=fill.qty or 0,
            price=fill.price,
            venue_timestamp=fill.timestamp or "",
        )
        if account_id:
            subject = subjects.fills_subject(account_id)
        else:
            self.unattributed_fills += 1
            log.warning("fill %s: account of order %s not known", fill.id, fill.orderId)
            subject = subjects.UNATTRIBUTED_FILLS
        self.outbox.put(
            subject, event, msg_id=f"fill-{fill.id}", context=otel_context.get_current()
        )

    async def _order_account_at_venue(self, login_id: str, order_id: int) -> int:
        """The account of an order this view does not know (0 if the venue cannot say)."""
        try:
            sock = await self._socket_for(login_id)
            if self._permit is not None:
                await self._permit(login_id)
            order = await sock.order_item(order_id)
        except Exception as exc:
            log.warning("order %s: lookup for its fill failed: %r", order_id, exc)
            return 0
        if order.accountId is None:
            return 0
        self._order_account.setdefault(order.id, order.accountId)
        return order.accountId
