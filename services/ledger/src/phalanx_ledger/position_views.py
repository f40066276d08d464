"""Positions by broker login and by strategy (pure, no I/O; ADR-0124).

- **By login**: the positions of every account the login reaches. Which login reaches an
  account is the auth service's record, the ``accounts`` KV bucket (``AccountRecord.login_id``;
  the ledger mirrors it read-only). It is the current owner: positions are current too, and an
  account moved to another login shows under the new one.
- **By strategy**: what the fills attributed to a strategy (ADR-0120: entry orders and their
  bracket legs; ``outside`` for the rest) did per (account, contract): contracts bought and
  sold, their net, and the P&L those fills realized. The venue nets every strategy's orders on
  one account into one position, so these are not positions the venue holds: a strategy whose
  position a trader closed by hand shows its net still open, and the close under ``outside``.
  Summed from per-order totals (:class:`~phalanx_ledger.fill_index.OrderSum`), so the cost
  grows with the number of orders, not of fills.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from phalanx_ledger.fill_index import OrderSum
from phalanx_ledger.projection import PositionsProjection, PositionView

__all__ = ["StrategyPosition", "login_positions", "strategy_positions"]


class StrategyPosition(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's fills on one (account, contract): contracts and realized P&L."""

    strategy_id: str
    account_id: int
    symbol: str
    contract_id: int
    net_pos: int
    bought: int
    sold: int
    fill_count: int
    realized_pnl: Decimal  # price points * contracts
    realized_pnl_money: Decimal | None
    currency: str


def login_positions(projection: PositionsProjection, accounts: Iterable[int]) -> list[PositionView]:
    """The positions of the given accounts (a login's), ordered by account then symbol."""
    wanted = set(accounts)
    return [view for view in projection.positions() if view.account_id in wanted]


@dataclass
class _Sum:
    contract_id: int
    currency: str
    bought: int = 0
    sold: int = 0
    fills: int = 0
    points: Decimal = Decimal(0)
    money: Decimal | None = Decimal(0)

    def add(self, order: OrderSum) -> None:
        self.bought += order.bought
        self.sold += order.sold
        self.fills += order.fills
        self.points += order.realized_pnl
        self.money = None if self.money is None or order.money is None else self.money + order.money


def strategy_positions(
    projection: PositionsProjection, strategy_id: str | None = None
) -> list[StrategyPosition]:
    """Per (strategy, account, contract) sums of the strategy's fills; one strategy if given.

    Ordered by strategy, account, symbol.
    """
    sums: dict[tuple[str, int, str], _Sum] = {}
    for (order_id, _, _), order in projection.index.order_sums.items():
        who = projection.orders.of(order_id).strategy_id
        if strategy_id is not None and who != strategy_id:
            continue
        key = (who, order.account_id, order.symbol)
        total = sums.get(key)
        if total is None:
            total = sums[key] = _Sum(order.contract_id, order.currency)
        total.add(order)
    return [
        StrategyPosition(
            strategy_id=who,
            account_id=account_id,
            symbol=symbol,
            contract_id=total.contract_id,
            net_pos=total.bought - total.sold,
            bought=total.bought,
            sold=total.sold,
            fill_count=total.fills,
            realized_pnl=total.points,
            realized_pnl_money=total.money,
            currency=total.currency,
        )
        for (who, account_id, symbol), total in sorted(sums.items())
    ]
