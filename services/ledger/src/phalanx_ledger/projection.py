"""The positions projection: fills in, positions and realized P&L out (pure, no I/O).

One position per (account id, symbol):

- ``net_pos``: signed contracts (long > 0, short < 0);
- ``avg_price``: average price of the open contracts (``None`` when flat); adding to a position
  averages in, reducing keeps it, reversing restarts it at the reversing fill's price;
- ``realized_pnl``: closed contracts * (exit - entry) in **price points**, signed by side;
- ``realized_pnl_money``: the same times the product's point value (MNQ $2, NQ $20, ...), in
  ``currency``, from the contract table (``phalanx_common.contracts``; the product is the symbol's
  root, ``MNQZ6`` -> MNQ). ``None`` (and ``currency`` empty) when the product is not in the
  table. Fills carry no commissions or fees, so none are deducted (ADR-0120);
- ``fill_count``, ``bought``, ``sold``: fills and contracts applied.

Fills are applied in stream order and deduplicated by ``fill_id`` (the venue's id): a fill
delivered twice, or published twice under different message ids, counts once. The projection
holds no clock and no randomness, so replaying the same stream gives the same positions.
A fill whose account the executor could not tell (``account_id`` 0, on ``fills.unattributed``)
is held, not applied, until an :class:`OrderAccepted` names its order (or one of its bracket
legs) — then it is applied to that order's account (ADR-0061).
Averages are exact decimals (default 28-digit context), not rounded to tick.
Each applied fill is kept as a compact record (:class:`AppliedFill`), a fee report as a
:class:`FeeReport`, with repeated values shared (ADR-0184).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from phalanx_common.contracts import ContractBook, ProductSpec
from phalanx_common.events import FillFees, FillReceived, OrderAccepted, OrderRejected
from phalanx_ledger.attribution import OrderIndex
from phalanx_ledger.fill_index import FillIndex
from phalanx_ledger.fill_records import ZERO, AppliedFill, FeeReport, SharedDecimals

__all__ = ["AppliedFill", "FeeReport", "OrderCounts", "PositionView", "PositionsProjection"]


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    """A position as the API shows it (decimals encode as strings)."""

    account_id: int
    symbol: str
    contract_id: int
    net_pos: int
    avg_price: Decimal | None
    realized_pnl: Decimal
    realized_pnl_money: Decimal | None = None
    currency: str = ""
    fill_count: int
    bought: int
    sold: int
    last_fill_id: int
    updated_ns: int


class OrderCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Order outcomes seen for one account (each intent counted once per outcome)."""

    accepted: int = 0
    rejected: int = 0


@dataclass
class _Position:
    account_id: int
    symbol: str
    contract_id: int
    spec: ProductSpec | None = None
    net_pos: int = 0
    avg_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)
    fill_count: int = 0
    bought: int = 0
    sold: int = 0
    last_fill_id: int = 0
    updated_ns: int = 0

    def apply(self, fill: FillReceived) -> Decimal:
        """Apply a fill; return the P&L (price points * contracts) it realized."""
        realized = ZERO
        qty = int(fill.qty)
        signed = qty if fill.action == "Buy" else -qty
        price = fill.price
        held = self.net_pos
        if held == 0 or (held > 0) == (signed > 0):
            opened = abs(held)
            average = self.avg_price if self.avg_price is not None else price
            self.avg_price = (average * opened + price * qty) / (opened + qty)
            self.net_pos = held + signed
        else:
            closing = min(qty, abs(held))
            entry = self.avg_price if self.avg_price is not None else price
            direction = 1 if held > 0 else -1
            realized = (price - entry) * closing * direction
            self.realized_pnl += realized
            self.net_pos = held + signed
            if self.net_pos == 0:
                self.avg_price = None
            elif (self.net_pos > 0) != (held > 0):  # reversed: the rest opened at this price
                self.avg_price = price
        if fill.action == "Buy":
            self.bought += qty
        else:
            self.sold += qty
        self.fill_count += 1
        if fill.contract_id != self.contract_id:
            self.contract_id = fill.contract_id
        self.last_fill_id = fill.fill_id
        self.updated_ns = fill.ts_event
        return realized

    def money(self, points: Decimal) -> Decimal | None:
        return points * self.spec.point_value if self.spec is not None else None

    def view(self) -> PositionView:
        return PositionView(
            account_id=self.account_id,
            symbol=self.symbol,
            contract_id=self.contract_id,
            net_pos=self.net_pos,
            avg_price=self.avg_price,
            realized_pnl=self.realized_pnl,
            realized_pnl_money=self.money(self.realized_pnl),
            currency=self.spec.currency if self.spec is not None else "",
            fill_count=self.fill_count,
            bought=self.bought,
            sold=self.sold,
            last_fill_id=self.last_fill_id,
            updated_ns=self.updated_ns,
        )


class PositionsProjection:
    """Positions per (account, symbol) and order counts per account, built from events."""

    def __init__(self, contracts: ContractBook | None = None) -> None:
        self._contracts = contracts if contracts is not None else ContractBook.load()
        self.orders = OrderIndex()
        self.applied: list[AppliedFill] = []  # in the order applied
        self.index = FillIndex()  # the same fills, sorted and grouped for queries (ADR-0123)
        self._positions: dict[tuple[int, str], _Position] = {}
        self._held_ids: set[int] = set()  # fills in ``_unattributed`` (applied: in ``index``)
        self._accepted: dict[int, set[str]] = {}
        self._rejected: dict[int, set[str]] = {}
        self._unattributed: dict[int, list[FillReceived]] = {}  # order id -> held fills
        self.fills_applied = 0
        self.duplicate_fills = 0
        self.fees: dict[int, FeeReport] = {}  # fill id -> the venue's fees (ADR-0127)
        self._unpaid: dict[int, set[int]] = {}  # account -> applied fills without fees yet
        self.decimals = SharedDecimals()  # prices, P&L and fees repeat: one object each

    @property
    def unattributed_fills(self) -> int:
        """Fills held until their order's account is known."""
        return sum(len(held) for held in self._unattributed.values())

    def apply_fill(self, fill: FillReceived) -> bool:
        """Apply a fill; return ``False`` (and change nothing) if its ``fill_id`` was seen."""
        if fill.fill_id in self.index.by_fill_id or fill.fill_id in self._held_ids:
            if fill.account_id and self._release_held(fill):
                return True
            self.duplicate_fills += 1
            return False
        if not fill.account_id:
            known = self.orders.account_of(fill.order_id)
            if known is None:
                self._unattributed.setdefault(fill.order_id, []).append(fill)
                self._held_ids.add(fill.fill_id)
                return True
            fill = msgspec.structs.replace(fill, account_id=known)
        self._apply_to_position(fill)
        return True

    def apply_fees(self, event: FillFees) -> bool:
        """Record a fill's fees once (the first report counts); ``False`` for a repeat."""
        if event.fill_id in self.fees:
            return False
        applied = self.index.by_fill_id.get(event.fill_id)
        report = FeeReport(
            fill_id=applied.fill_id if applied is not None else event.fill_id,
            currency=sys.intern(event.currency),
            total=self.decimals.of(event.total),
        )
        self.fees[report.fill_id] = report
        self._unpaid.get(event.account_id, set()).discard(event.fill_id)
        if applied is not None:
            self.index.add_fees(applied, report)
        return True

    def fills_without_fees(self, account_id: int) -> list[int]:
        """Applied fills of an account whose fees the venue has not reported yet."""
        return sorted(self._unpaid.get(account_id, ()))

    def product_of(self, symbol: str) -> ProductSpec | None:
        """The contract table's product of a symbol (``None`` when unknown)."""
        return self._contracts.product_of(symbol)

    def knows_fill(self, fill_id: int) -> bool:
        """Whether a fill was applied to its account (a held, unattributed fill is not)."""
        return fill_id in self.index.by_fill_id

    def _release_held(self, fill: FillReceived) -> bool:
        """Apply a held unattributed fill now that a report names its account (reconciliation,
        ADR-0125); ``False`` when the fill is not held."""
        held = self._unattributed.get(fill.order_id, [])
        if not any(h.fill_id == fill.fill_id for h in held):
            return False
        rest = [h for h in held if h.fill_id != fill.fill_id]
        self._held_ids.discard(fill.fill_id)
        if rest:
            self._unattributed[fill.order_id] = rest
        else:
            del self._unattributed[fill.order_id]
        self._apply_to_position(fill)
        return True

    def _apply_to_position(self, fill: FillReceived) -> None:
        key = (fill.account_id, fill.symbol)
        position = self._positions.get(key)
        if position is None:
            spec = self._contracts.product_of(fill.symbol)
            position = _Position(fill.account_id, fill.symbol, fill.contract_id, spec)
            self._positions[key] = position
        realized = position.apply(fill)
        if fill.fill_id not in self.fees:
            self._unpaid.setdefault(position.account_id, set()).add(fill.fill_id)
        shared = self.decimals.of
        money = position.money(realized)
        applied = AppliedFill(
            fill_id=fill.fill_id,
            order_id=fill.order_id,
            account_id=position.account_id,
            contract_id=position.contract_id,
            symbol=position.symbol,
            action="Buy" if fill.action == "Buy" else "Sell",
            qty=fill.qty,
            price=shared(fill.price),
            ts_event=fill.ts_event,
            realized_pnl=shared(realized),
            realized_pnl_money=None if money is None else shared(money),
            currency=position.spec.currency if position.spec is not None else "",
        )
        self.applied.append(applied)
        self.index.add(applied)
        fees = self.fees.get(fill.fill_id)
        if fees is not None:  # reported before the fill was applied
            self.index.add_fees(applied, fees)
        self.fills_applied += 1

    def apply_order(self, event: OrderAccepted | OrderRejected) -> bool:
        """Count an order outcome once per intent; return ``False`` for a repeat."""
        if isinstance(event, OrderAccepted):
            self.orders.add(event)  # order -> attribution and account
            for order_id in (event.order_id, event.oso1_id, event.oso2_id):
                if order_id:
                    self._attribute(order_id, event.account_id)
        book = self._accepted if isinstance(event, OrderAccepted) else self._rejected
        intents = book.setdefault(event.account_id, set())
        if event.intent_id in intents:
            return False
        intents.add(event.intent_id)
        return True

    def _attribute(self, order_id: int, account_id: int) -> None:
        for fill in self._unattributed.pop(order_id, []):
            self._held_ids.discard(fill.fill_id)
            self._apply_to_position(msgspec.structs.replace(fill, account_id=account_id))

    def positions(self, account_id: int | None = None) -> list[PositionView]:
        """Positions (of one account when given), ordered by account then symbol."""
        return [
            position.view()
            for key, position in sorted(self._positions.items())
            if account_id is None or key[0] == account_id
        ]

    def order_counts(self, account_id: int) -> OrderCounts:
        """Accepted and rejected orders seen for an account."""
        return OrderCounts(
            accepted=len(self._accepted.get(account_id, ())),
            rejected=len(self._rejected.get(account_id, ())),
        )

    def accounts(self) -> list[int]:
        """Every account with a position or an order outcome, ascending."""
        seen = {key[0] for key in self._positions} | set(self._accepted) | set(self._rejected)
        return sorted(seen)
