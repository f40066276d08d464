"""Finished orders are forgotten after a retention, so the venue's memory stops growing (ADR-0187).

An order is *finished* once it is Filled or Canceled (the simulator creates no Rejected or
Expired orders: refusals are answered without one). Orders are kept and forgotten by *family*:
an order with its OSO brackets (``parentId``/``linkedId`` name each other), or a lone order. A
family becomes finished when its last member does; from then on its age counts. A finished
family is forgotten, with everything that exists only because of it (order versions, commands,
command reports, execution reports, fills and their fillFees, the account's fill list), when

- it finished at least ``max_age_s`` ago (``sim_finished_order_retention_s``), or
- more than ``max_orders`` finished orders are held (``sim_finished_orders_max``): the oldest
  finished families go first, but never one that finished less than ``min_age_s`` ago
  (``sim_finished_order_min_retention_s``, 10 minutes): the executor looks an order up by its
  ``clOrdId`` within a minute of sending it, and an order it cannot find is one it sends again.

A family with a working or suspended member is never forgotten, nor is anything that is not an
order's: positions, cash balances, accounts. A forgotten id is an unknown id: ``order/item``
answers 404, ``*/deps`` of it ``[]``, a cancel of it as a cancel of an id that never existed.

:meth:`FinishedOrders.prune` is cheap (it looks at the oldest finished family only, unless
something is due): the matching engine calls it before it places an order, the simulator's
housekeeping once a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from phalanx_sim.state import OrderRecord, SimState
from phalanx_sim.times import VenueClock

__all__ = ["LIVE_STATUSES", "FinishedOrders", "RetentionPolicy"]

#: the order states of an order that may still change (everything else is finished)
LIVE_STATUSES = frozenset({"Working", "Suspended"})


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long and how many finished orders are kept (0: no limit of that kind)."""

    max_age_s: float = 86_400.0
    max_orders: int = 100_000
    min_age_s: float = 600.0


class FinishedOrders:
    """The finished order families, oldest first, and their forgetting."""

    def __init__(
        self,
        state: SimState,
        clock: VenueClock,
        policy: RetentionPolicy,
        on_forget: Callable[[OrderRecord], None] | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.policy = policy
        self._on_forget = on_forget
        # (when the family finished, its root order id, how many orders it has)
        self._queue: deque[tuple[float, int, int]] = deque()
        #: finished orders still held
        self.held = 0
        #: orders forgotten so far
        self.forgotten = 0

    def finished(self, rec: OrderRecord) -> None:
        """Note that ``rec`` just reached a final state (call once per order, at that moment)."""
        orders = self.state.orders
        root = rec
        if rec.order.parentId is not None:
            root = orders.get(rec.order.parentId, rec)
        family = [root, *(orders[c] for c in root.children if c in orders)]
        if any(member.order.ordStatus in LIVE_STATUSES for member in family):
            return
        self._queue.append((self.clock.time(), root.order.id, len(family)))
        self.held += len(family)

    def prune(self) -> int:
        """Forget the finished families past the retention; returns how many orders went."""
        queue = self._queue
        if not queue:
            return 0
        max_age = self.policy.max_age_s
        max_orders = self.policy.max_orders
        now = self.clock.time()
        oldest = now - max_age
        youngest_to_count = now - self.policy.min_age_s
        dropped = 0
        while queue:
            finished_at, root_id, size = queue[0]
            too_old = max_age > 0 and finished_at <= oldest
            too_many = (
                max_orders > 0 and self.held > max_orders and finished_at <= youngest_to_count
            )
            if not (too_old or too_many):
                break
            queue.popleft()
            self.held -= size
            dropped += self._forget_family(root_id)
        self.forgotten += dropped
        return dropped

    def _forget_family(self, root_id: int) -> int:
        orders = self.state.orders
        root = orders.get(root_id)
        if root is None:
            return 0
        family = [root, *(orders[c] for c in root.children if c in orders)]
        for rec in family:
            self._forget(rec)
        return len(family)

    def _forget(self, rec: OrderRecord) -> None:
        """Remove an order and every record that hangs off it from the state's indexes."""
        state = self.state
        order_id = rec.order.id
        entities = state.entities
        state.orders.pop(order_id, None)
        entities.pop(order_id, None)
        book = state.books.get(rec.order.accountId)
        if book is not None:
            book.orders.pop(order_id, None)
            book.live.pop(order_id, None)
        for version in rec.versions:
            entities.pop(version.id, None)
        for crec in rec.commands:
            state.commands.pop(crec.command.id, None)
            entities.pop(crec.command.id, None)
            for report in crec.reports:
                entities.pop(report.id, None)
            for execution in crec.executions:
                entities.pop(execution.id, None)
        for fill in rec.fills:
            entities.pop(fill.id, None)
            state.fill_fees.pop(fill.id, None)
            if book is not None:
                book.fills.pop(fill.id, None)
        if self._on_forget is not None:
            self._on_forget(rec)
