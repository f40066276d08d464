"""What a fill does to the account's book: its position (net, average price, realized P&L) and
its cash (fees charged, P&L realized). Each change is reported through ``emit``."""

from __future__ import annotations

from phalanx_sim.entities import CashBalance, Position
from phalanx_sim.fees import FillFee
from phalanx_sim.sink import Emit
from phalanx_sim.state import AccountBook, OrderRecord, SimState
from phalanx_sim.times import VenueClock

__all__ = ["Bookkeeping"]


class Bookkeeping:
    """Positions and cash balances of the accounts, as fills move them."""

    def __init__(self, state: SimState, clock: VenueClock, emit: Emit) -> None:
        self.state = state
        self.clock = clock
        self._emit = emit

    def apply_to_position(
        self, book: AccountBook, rec: OrderRecord, qty: int, price: float, ts: str
    ) -> None:
        info = rec.info
        cid = info.contract.id
        position = book.positions.get(cid)
        created = position is None
        if position is None:
            position = Position(
                id=self.state.next_id(),
                accountId=book.account.id,
                contractId=cid,
                timestamp=ts,
                tradeDate=self.clock.trade_date(),
                netPos=0,
                bought=0,
                boughtValue=0.0,
                sold=0,
                soldValue=0.0,
                prevPos=0,
            )
            book.positions[cid] = position
            self.state.register(position)
        signed = qty if rec.order.action == "Buy" else -qty
        if signed > 0:
            position.bought += qty
            position.boughtValue += qty * price
        else:
            position.sold += qty
            position.soldValue += qty * price
        net = position.netPos
        avg = position.netPrice
        realized = 0.0
        if net == 0 or (net > 0) == (signed > 0):
            held = abs(net)
            base = avg if avg is not None else price
            position.netPrice = (held * base + qty * price) / (held + qty)
        else:
            closed = min(qty, abs(net))
            assert avg is not None
            direction = 1 if net > 0 else -1
            realized = (price - avg) * closed * direction * info.spec.value_per_point
            if qty > abs(net):
                position.netPrice = price
            elif qty == abs(net):
                position.netPrice = None
        position.netPos = net + signed
        position.timestamp = ts
        self._emit(book.account.id, "position", "Created" if created else "Updated", position)
        if realized:
            self.realize(book.cash, round(realized, 2), ts)

    def charge(self, book: AccountBook, fee: FillFee, ts: str) -> None:
        """Record a fill's fees and take them from the account's cash (fees.py)."""
        self.state.fill_fees[fee.id] = (fee, book.account.id)
        total = fee.total
        if total:
            cash = book.cash
            cash.amount = round(cash.amount - total, 2)
            cash.timestamp = ts
            self._emit(cash.accountId, "cashBalance", "Updated", cash)

    def realize(self, cash: CashBalance, amount: float, ts: str) -> None:
        cash.amount = round(cash.amount + amount, 2)
        cash.realizedPnL = round(cash.realizedPnL + amount, 2)
        cash.weekRealizedPnL = round(cash.weekRealizedPnL + amount, 2)
        cash.timestamp = ts
        self._emit(cash.accountId, "cashBalance", "Updated", cash)
