"""The applied fills, kept sorted for the admin queries (pure, no I/O; ADR-0123).

Queries page through fills ordered by (``ts_event``, ``fill_id``) and filter by account, strategy
and time. Instead of sorting every fill on each call, the index keeps:

- every fill in that order (a fill is inserted where it belongs; fills arrive nearly in order,
  so an insert is almost always an append);
- the same per account, so an account's page touches only its own fills;
- the fills of each venue order (the fill itself while an order has one, the usual case; a list
  from its second fill on), so a strategy's fills are gathered from its orders (the
  attribution of an order can still arrive after its fills: it is looked up per query);
- realized money totals per (UTC day, currency) and (account, currency), so P&L by day and
  account reads a few totals;
- per venue order, the contracts bought and sold and the P&L its fills realized
  (:class:`OrderSum`), from which P&L and positions by strategy are summed (ADR-0124).

A page starts with a binary search on (``since``, cursor) and stops after ``limit`` matches.
The search reads each fill's key from the fill: no key is stored beside it (ADR-0184).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from phalanx_ledger.fill_records import ZERO, AppliedFill, plus

if TYPE_CHECKING:
    from phalanx_ledger.fill_records import FeeReport

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

    def add_fees(self, report: FeeReport) -> None:
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
        if order.fee_currency is not None:
            self.fees[order.fee_currency] = (
                self.fees.get(order.fee_currency, Decimal(0)) + order.fee_total
            )
        if order.other_fees is not None:
            _add_fees(self.fees, order.other_fees)
        self.covered += order.covered

    def merge(self, other: MoneyTotal) -> None:
        """Add another total to this one."""
        self.money += other.money
        self.fills += other.fills
        self.unpriced += other.unpriced
        _add_fees(self.fees, other.fees)
        self.covered += other.covered


class OrderSum:
    """What one venue order's fills did to its (account, contract): contracts and P&L.

    The fees of its fills: ``fee_total`` in ``fee_currency`` (``None`` until the first report),
    and ``other_fees`` by currency for reports in another one (``None`` until there is one; a
    dict per order would be kept for a single amount). Sums reuse the objects they add when the
    written form allows (:func:`~phalanx_ledger.fill_records.plus`).
    """

    __slots__ = (
        "account_id",
        "bought",
        "contract_id",
        "covered",
        "currency",
        "fee_currency",
        "fee_total",
        "fills",
        "money",
        "other_fees",
        "realized_pnl",
        "sold",
        "symbol",
    )

    def __init__(self, applied: AppliedFill) -> None:
        self.account_id = applied.account_id
        self.symbol = applied.symbol
        self.contract_id = applied.contract_id
        self.currency = applied.currency
        self.bought = 0
        self.sold = 0
        self.fills = 0
        self.realized_pnl = ZERO
        self.money: Decimal | None = ZERO if applied.realized_pnl_money is not None else None
        self.fee_currency: str | None = None
        self.fee_total = ZERO
        self.other_fees: dict[str, Decimal] | None = None
        self.covered = 0

    def add_fees(self, report: FeeReport) -> None:
        """Count the fee report of one of the order's fills."""
        if self.fee_currency is None:
            self.fee_currency = report.currency
        if report.currency == self.fee_currency:
            self.fee_total = plus(self.fee_total, report.total)
        else:
            if self.other_fees is None:
                self.other_fees = {}
            self.other_fees[report.currency] = (
                self.other_fees.get(report.currency, Decimal(0)) + report.total
            )
        self.covered += 1

    def add(self, applied: AppliedFill) -> None:
        """Count one fill of the order."""
        if applied.action == "Buy":
            self.bought += applied.qty
        else:
            self.sold += applied.qty
        self.fills += 1
        self.realized_pnl = plus(self.realized_pnl, applied.realized_pnl)
        if self.money is not None and applied.realized_pnl_money is not None:
            self.money = plus(self.money, applied.realized_pnl_money)


def _key(applied: AppliedFill) -> FillKey:
    return (applied.ts_event, applied.fill_id)


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
    """Fills ordered by (``ts_event``, ``fill_id``) with binary search on that key (read from
    the fills themselves)."""

    __slots__ = ("_fills",)

    def __init__(self) -> None:
        self._fills: list[AppliedFill] = []

    def __len__(self) -> int:
        return len(self._fills)

    @classmethod
    def of_sorted(cls, fills: list[AppliedFill]) -> SortedFills:
        """Fills already in (``ts_event``, ``fill_id``) order, taken as they are."""
        sorted_fills = cls()
        sorted_fills._fills = fills
        return sorted_fills

    def add(self, applied: AppliedFill) -> None:
        """Insert a fill at its place (an append when it is the newest)."""
        fills = self._fills
        if not fills or _key(applied) >= _key(fills[-1]):
            fills.append(applied)
            return
        fills.insert(bisect.bisect_right(fills, _key(applied), key=_key), applied)

    def after(self, since_ns: int | None, cursor: FillKey | None) -> Iterator[AppliedFill]:
        """Fills with ``ts_event >= since_ns`` and key ``> cursor``, in order."""
        fills = self._fills
        start = 0
        if since_ns is not None:
            start = bisect.bisect_left(fills, (since_ns, _LOWEST_ID), key=_key)
        if cursor is not None:
            start = max(start, bisect.bisect_right(fills, cursor, key=_key))
        for at in range(start, len(fills)):
            yield fills[at]


# A venue order's fills: the fill itself while it is the only one, then a list.
_OrderFills = AppliedFill | list[AppliedFill]


class FillIndex:
    """Every applied fill, sorted, per account and per order, with money totals."""

    def __init__(self) -> None:
        self.all = SortedFills()
        self._by_account: dict[int, SortedFills] = {}
        self._by_order: dict[int, _OrderFills] = {}
        self.by_fill_id: dict[int, AppliedFill] = {}  # for the fees of a fill (ADR-0127)
        self.by_day: dict[tuple[str, str], MoneyTotal] = {}
        self.by_account: dict[tuple[int, str], MoneyTotal] = {}
        # per (venue order, account, symbol): a venue order has one of each, but a fill stream
        # is not trusted to say so
        self.order_sums: dict[OrderKey, OrderSum] = {}

    def _add_to_order(self, applied: AppliedFill) -> None:
        order_id = applied.order_id
        held = self._by_order.get(order_id)
        if held is None:
            self._by_order[order_id] = applied
        elif isinstance(held, list):
            held.append(applied)
        else:
            self._by_order[order_id] = [held, applied]

    def _add_to_order_sum(self, applied: AppliedFill) -> None:
        order_key = (applied.order_id, applied.account_id, applied.symbol)
        order_sum = self.order_sums.get(order_key)
        if order_sum is None:
            order_sum = self.order_sums[order_key] = OrderSum(applied)
        order_sum.add(applied)

    def add(self, applied: AppliedFill) -> None:
        """Index one applied fill."""
        self.all.add(applied)
        self.by_fill_id[applied.fill_id] = applied
        account = self._by_account.get(applied.account_id)
        if account is None:
            account = self._by_account[applied.account_id] = SortedFills()
        account.add(applied)
        self._add_to_order(applied)
        currency = applied.currency
        total_of(self.by_day, (utc_day(applied.ts_event), currency)).add(applied)
        total_of(self.by_account, (applied.account_id, currency)).add(applied)
        self._add_to_order_sum(applied)

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
        by_day = self.by_day
        days: dict[tuple[int, str], MoneyTotal] = {}  # by day number first, named below
        by_fill_id = self.by_fill_id
        for applied in ordered:
            by_fill_id[applied.fill_id] = applied
            account = accounts.get(applied.account_id)
            if account is None:
                account = accounts[applied.account_id] = []
            account.append(applied)
            self._add_to_order(applied)
            self._add_to_order_sum(applied)
            total_of(days, (applied.ts_event // _DAY_NS, applied.currency)).add(applied)
        for (number, currency), day_total in days.items():
            total_of(by_day, (utc_day(number * _DAY_NS), currency)).merge(day_total)
        self._by_account = {a: SortedFills.of_sorted(f) for a, f in accounts.items()}
        for order in self.order_sums.values():
            total_of(self.by_account, (order.account_id, order.currency)).add_order(order)

    def add_fees(self, applied: AppliedFill, report: FeeReport) -> None:
        """Count the fee report of an indexed fill in its day's, account's and order's totals
        (once per fill: the projection keeps the first report)."""
        total_of(self.by_day, (utc_day(applied.ts_event), applied.currency)).add_fees(report)
        total_of(self.by_account, (applied.account_id, applied.currency)).add_fees(report)
        self.order_sums[(applied.order_id, applied.account_id, applied.symbol)].add_fees(report)

    def of_account(self, account_id: int) -> SortedFills:
        """One account's fills (empty when it has none)."""
        return self._by_account.get(account_id) or SortedFills()

    def _of_order(self, order_id: int) -> Iterator[AppliedFill]:
        held = self._by_order.get(order_id)
        if held is None:
            return
        if isinstance(held, list):
            yield from held
        else:
            yield held

    def of_orders(self, order_ids: set[int]) -> SortedFills:
        """The fills of some venue orders, sorted."""
        fills = SortedFills()
        for applied in sorted(
            (a for order_id in order_ids for a in self._of_order(order_id)), key=_key
        ):
            fills.add(applied)
        return fills

    def order_ids(self) -> set[int]:
        """Every venue order with a fill."""
        return set(self._by_order)
