"""The applied fills, kept sorted for the admin queries (pure, no I/O; ADR-0123).

Queries page through fills ordered by (``ts_event``, ``fill_id``) and filter by account, strategy
and time. Instead of sorting every fill on each call, the index keeps:

- every fill in that order (a fill is inserted where it belongs; fills arrive nearly in order,
  so an insert is almost always an append);
- the same per account, so an account's page touches only its own fills;
- the fills of each venue order, so a strategy's fills are gathered from its orders (the
  attribution of an order can still arrive after its fills: it is looked up per query);
- realized money totals per (UTC day, currency) and (account, currency), so P&L by day and
  account reads a few totals;
- per venue order, the contracts bought and sold and the P&L its fills realized
  (:class:`OrderSum`), from which P&L and positions by strategy are summed (ADR-0124).

A page starts with a binary search on (``since``, cursor) and stops after ``limit`` matches.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from phalanx_common.events import FillFees
    from phalanx_ledger.projection import AppliedFill

__all__ = ["FillIndex", "FillKey", "MoneyTotal", "OrderSum", "SortedFills", "total_of"]

FillKey = tuple[int, int]  # (ts_event, fill_id)
OrderKey = tuple[int, int, str]  # (order_id, account_id, symbol)

_LOWEST_ID = -(2**63)
_K = TypeVar("_K", tuple[str, str], tuple[int, str])  # (day or account, currency)


def _add_fees(fees: dict[str, Decimal], more: dict[str, Decimal]) -> None:
    for currency, amount in more.items():
        fees[currency] = fees.get(currency, Decimal(0)) + amount


class MoneyTotal:
    """Realized money of a group of fills in one currency, with its fill counts, and the fees
    the venue reported for those fills (by the fees' own currency; ``covered``: how many of
    the fills have their fee report)."""

    __slots__ = ("covered", "fees", "fills", "money", "unpriced")

    def __init__(self) -> None:
        self.money = Decimal(0)
        self.fills = 0
        self.unpriced = 0
        self.fees: dict[str, Decimal] = {}
        self.covered = 0

    def add_fees(self, report: FillFees) -> None:
        """Count the fee report of one of the group's fills."""
        self.fees[report.currency] = self.fees.get(report.currency, Decimal(0)) + report.total
        self.covered += 1

    def add(self, applied: AppliedFill) -> None:
        """Count one fill (its money, or as unpriced when its product is unknown)."""
        self.fills += 1
        if applied.realized_pnl_money is None:
            self.unpriced += 1
        else:
            self.money += applied.realized_pnl_money

    def add_order(self, order: OrderSum) -> None:
        """Count the fills of one order's contract (all priced, or all unpriced: one product)."""
        self.fills += order.fills
        if order.money is None:
            self.unpriced += order.fills
        else:
            self.money += order.money
        _add_fees(self.fees, order.fees)
        self.covered += order.covered

    def merge(self, other: MoneyTotal) -> None:
        """Add another total to this one."""
        self.money += other.money
        self.fills += other.fills
        self.unpriced += other.unpriced
        _add_fees(self.fees, other.fees)
        self.covered += other.covered


class OrderSum:
    """What one venue order's fills did to its (account, contract): contracts and P&L."""

    __slots__ = (
        "account_id",
        "bought",
        "contract_id",
        "covered",
        "currency",
        "fees",
        "fills",
        "money",
        "realized_pnl",
        "sold",
        "symbol",
    )

    def __init__(self, applied: AppliedFill) -> None:
        fill = applied.fill
        self.account_id = fill.account_id
        self.symbol = fill.symbol
        self.contract_id = fill.contract_id
        self.currency = applied.currency
        self.bought = 0
        self.sold = 0
        self.fills = 0
        self.realized_pnl = Decimal(0)
        self.money: Decimal | None = Decimal(0) if applied.realized_pnl_money is not None else None
        self.fees: dict[str, Decimal] = {}
        self.covered = 0

    def add_fees(self, report: FillFees) -> None:
        """Count the fee report of one of the order's fills."""
        self.fees[report.currency] = self.fees.get(report.currency, Decimal(0)) + report.total
        self.covered += 1

    def add(self, applied: AppliedFill) -> None:
        """Count one fill of the order."""
        if applied.fill.action == "Buy":
            self.bought += applied.fill.qty
        else:
            self.sold += applied.fill.qty
        self.fills += 1
        self.realized_pnl += applied.realized_pnl
        if self.money is not None and applied.realized_pnl_money is not None:
            self.money += applied.realized_pnl_money


def _key(applied: AppliedFill) -> FillKey:
    return (applied.fill.ts_event, applied.fill.fill_id)


_DAY_NS = 86_400 * 1_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_days: dict[int, str] = {}


def utc_day(ts_ns: int) -> str:
    """The UTC date (``YYYY-MM-DD``) of a nanosecond timestamp."""
    number = ts_ns // _DAY_NS
    day = _days.get(number)
    if day is None:
        day = _days[number] = (_EPOCH + dt.timedelta(days=number)).isoformat()
    return day


def total_of(totals: dict[_K, MoneyTotal], key: _K) -> MoneyTotal:
    """The total under ``key``, created empty when there is none yet."""
    total = totals.get(key)
    if total is None:
        total = totals[key] = MoneyTotal()
    return total


class SortedFills:
    """Fills ordered by (``ts_event``, ``fill_id``) with binary search on that key."""

    __slots__ = ("_fills", "_keys")

    def __init__(self) -> None:
        self._keys: list[FillKey] = []
        self._fills: list[AppliedFill] = []

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def of_sorted(cls, fills: list[AppliedFill]) -> SortedFills:
        """Fills already in (``ts_event``, ``fill_id``) order, taken as they are."""
        sorted_fills = cls()
        sorted_fills._fills = fills
        sorted_fills._keys = [(a.fill.ts_event, a.fill.fill_id) for a in fills]
        return sorted_fills

    def add(self, applied: AppliedFill) -> None:
        """Insert a fill at its place (an append when it is the newest)."""
        key = _key(applied)
        if not self._keys or key >= self._keys[-1]:
            self._keys.append(key)
            self._fills.append(applied)
            return
        at = bisect.bisect_right(self._keys, key)
        self._keys.insert(at, key)
        self._fills.insert(at, applied)

    def after(self, since_ns: int | None, cursor: FillKey | None) -> Iterator[AppliedFill]:
        """Fills with ``ts_event >= since_ns`` and key ``> cursor``, in order."""
        start = 0
        if since_ns is not None:
            start = bisect.bisect_left(self._keys, (since_ns, _LOWEST_ID))
        if cursor is not None:
            start = max(start, bisect.bisect_right(self._keys, cursor))
        for at in range(start, len(self._fills)):
            yield self._fills[at]


class FillIndex:
    """Every applied fill, sorted, per account and per order, with money totals."""

    def __init__(self) -> None:
        self.all = SortedFills()
        self._by_account: dict[int, SortedFills] = {}
        self._by_order: dict[int, list[AppliedFill]] = {}
        self.by_fill_id: dict[int, AppliedFill] = {}  # for the fees of a fill (ADR-0127)
        self.by_day: dict[tuple[str, str], MoneyTotal] = {}
        self.by_account: dict[tuple[int, str], MoneyTotal] = {}
        # per (venue order, account, symbol): a venue order has one of each, but a fill stream
        # is not trusted to say so
        self.order_sums: dict[OrderKey, OrderSum] = {}

    def add(self, applied: AppliedFill) -> None:
        """Index one applied fill."""
        fill = applied.fill
        self.all.add(applied)
        self.by_fill_id[fill.fill_id] = applied
        account = self._by_account.get(fill.account_id)
        if account is None:
            account = self._by_account[fill.account_id] = SortedFills()
        account.add(applied)
        self._by_order.setdefault(fill.order_id, []).append(applied)
        currency = applied.currency
        total_of(self.by_day, (utc_day(fill.ts_event), currency)).add(applied)
        total_of(self.by_account, (fill.account_id, currency)).add(applied)
        order_key = (fill.order_id, fill.account_id, fill.symbol)
        order_sum = self.order_sums.get(order_key)
        if order_sum is None:
            order_sum = self.order_sums[order_key] = OrderSum(applied)
        order_sum.add(applied)

    def extend(self, fills: list[AppliedFill]) -> None:
        """Index many fills at once (a snapshot's): one sort instead of an insert each, and the
        account totals summed per order. Same result as :meth:`add` for each."""
        if len(self.all):
            for applied in fills:
                self.add(applied)
            return
        ordered = sorted(fills, key=_key)
        self.all = SortedFills.of_sorted(ordered)
        accounts: dict[int, list[AppliedFill]] = {}
        by_order = self._by_order
        order_sums = self.order_sums
        by_day = self.by_day
        days: dict[tuple[int, str], MoneyTotal] = {}  # by day number first, named below
        by_fill_id = self.by_fill_id
        for applied in ordered:
            fill = applied.fill
            by_fill_id[fill.fill_id] = applied
            account = accounts.get(fill.account_id)
            if account is None:
                account = accounts[fill.account_id] = []
            account.append(applied)
            of_order = by_order.get(fill.order_id)
            if of_order is None:
                of_order = by_order[fill.order_id] = []
            of_order.append(applied)
            order_key = (fill.order_id, fill.account_id, fill.symbol)
            order_sum = order_sums.get(order_key)
            if order_sum is None:
                order_sum = order_sums[order_key] = OrderSum(applied)
            order_sum.add(applied)
            total_of(days, (fill.ts_event // _DAY_NS, applied.currency)).add(applied)
        for (number, currency), day_total in days.items():
            total_of(by_day, (utc_day(number * _DAY_NS), currency)).merge(day_total)
        self._by_account = {a: SortedFills.of_sorted(f) for a, f in accounts.items()}
        for order in order_sums.values():
            total_of(self.by_account, (order.account_id, order.currency)).add_order(order)

    def add_fees(self, applied: AppliedFill, report: FillFees) -> None:
        """Count the fee report of an indexed fill in its day's, account's and order's totals
        (once per fill: the projection keeps the first report)."""
        fill = applied.fill
        total_of(self.by_day, (utc_day(fill.ts_event), applied.currency)).add_fees(report)
        total_of(self.by_account, (fill.account_id, applied.currency)).add_fees(report)
        self.order_sums[(fill.order_id, fill.account_id, fill.symbol)].add_fees(report)

    def of_account(self, account_id: int) -> SortedFills:
        """One account's fills (empty when it has none)."""
        return self._by_account.get(account_id) or SortedFills()

    def of_orders(self, order_ids: set[int]) -> SortedFills:
        """The fills of some venue orders, sorted."""
        fills = SortedFills()
        for applied in sorted(
            (a for order_id in order_ids for a in self._by_order.get(order_id, ())), key=_key
        ):
            fills.add(applied)
        return fills

    def order_ids(self) -> set[int]:
        """Every venue order with a fill."""
        return set(self._by_order)
