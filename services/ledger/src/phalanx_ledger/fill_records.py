"""What the ledger keeps per fill and per fee report: compact records (ADR-0184; pure, no I/O).

The ledger keeps every applied fill for its admin queries. It keeps one flat record per fill
(:class:`AppliedFill`) with the fields the queries read, not the decoded ``FillReceived``:
the event's ``event_id``, ``ts_init``, ``venue_timestamp`` and ``reported_by`` are read by no
query and are not kept. Of a ``FillFees`` report it keeps the fill's id, the fees' currency and
their total (:class:`FeeReport`); the parts of the total are read by no query.

Both records are array-like msgspec structs without a GC header (``gc=False``: they hold only
numbers and strings, so they can be in no reference cycle). Values that repeat from fill to
fill are shared instead of copied: a position's symbol and account/contract ids, the zero P&L
of a fill that closed nothing (:data:`ZERO`), and prices and fee totals through
:class:`SharedDecimals`.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import msgspec

from phalanx_common.events import VenueAction

__all__ = ["ZERO", "AppliedFill", "FeeReport", "SharedDecimals", "plus"]

#: The P&L of a fill that closed nothing, and the start of every sum: one object for all.
ZERO = Decimal(0)


class AppliedFill(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A fill as applied to its position, with the P&L it realized (points and money)."""

    fill_id: int
    order_id: int
    account_id: int
    contract_id: int
    symbol: str
    action: VenueAction
    qty: int
    price: Decimal
    ts_event: int
    realized_pnl: Decimal
    realized_pnl_money: Decimal | None
    currency: str

    @property
    def fill(self) -> AppliedFill:
        """The fill's fields are the record's own (``applied.fill.symbol`` reads as before)."""
        return self


class FeeReport(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The venue's fees of one fill: their total in ``currency`` (ADR-0127)."""

    fill_id: int
    currency: str
    total: Decimal


class SharedDecimals:
    """One object per distinct decimal (same digits and exponent: ``str`` equal) among the last
    ``limit`` distinct ones seen; a full pool starts over (what is already shared stays)."""

    __slots__ = ("_limit", "_pool")

    def __init__(self, limit: int = 4_096) -> None:
        self._limit = limit
        self._pool: dict[str, Decimal] = {"0": ZERO}  # ZERO itself: sums skip adding it

    def __len__(self) -> int:
        return len(self._pool)

    def of(self, value: Decimal) -> Decimal:
        """The pool's object equal to ``value`` in value and written form (``value`` if new)."""
        key = str(value)
        found = self._pool.get(key)
        if found is not None:
            return found
        if len(self._pool) >= self._limit:
            self._pool = {"0": ZERO}
        self._pool[key] = value
        return value


def plus(total: Decimal, amount: Decimal) -> Decimal:
    """``total + amount``, without a new object when the sum is written like one of them.

    For a sum that started at :data:`ZERO` (every sum the ledger keeps does): such a sum is
    never ``-0`` and its exponent is at most 0, so adding ``ZERO`` leaves its value and written
    form unchanged (``total`` is returned); and ``ZERO + amount`` is written like ``amount``
    when ``amount`` is not ``-0``, has an exponent of at most 0 and fits the context's
    precision (``amount`` is returned). Otherwise the sum is computed as ever.
    """
    if amount is ZERO:
        return total
    if total is ZERO and not (amount.is_zero() and amount.is_signed()):
        sign_digits_exponent = amount.as_tuple()
        exponent = sign_digits_exponent.exponent
        if (
            isinstance(exponent, int)
            and exponent <= 0
            and len(sign_digits_exponent.digits) <= getcontext().prec
        ):
            return amount
    return total + amount
