"""Compare the ledger's positions of one account with the broker's (ADR-0125; pure, no I/O).

Per contract of the account (by contract id), three numbers:

- ``ledger_net_pos``: the ledger's book at the moment of the check;
- ``broker_net_pos``: the broker's ``position/deps`` answer (a contract it does not list is
  flat *at the broker* — the answer came; a missing answer never reaches this module);
- ``fetched_net_pos``: the signed contracts of broker fills the ledger did not have (fetched
  and now recorded).

The account is ``ok`` when the ledger's book equals the broker's for every contract, ``drift``
otherwise; a drift is ``explained`` when ``ledger + fetched == broker`` everywhere (the
missing fills, a manual trade for instance, account for it). ``unknown`` (no broker report) is
made by the caller, with its reason and no contracts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Literal

import msgspec

from phalanx_common.events import FillReceived, PositionDriftRow
from phalanx_ledger.projection import PositionView
from phalanx_tradovate import wire

__all__ = ["ContractCheck", "Reconciliation", "Status", "compare", "unknown"]

Status = Literal["ok", "drift", "unknown"]


class ContractCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Both sides of one contract of one account."""

    contract_id: int
    symbol: str
    ledger_net_pos: int
    broker_net_pos: int
    fetched_net_pos: int = 0
    ledger_avg_price: Decimal | None = None
    broker_net_price: Decimal | None = None

    @property
    def agrees(self) -> bool:
        """The ledger's book (before fetching) equals the broker's."""
        return self.ledger_net_pos == self.broker_net_pos

    @property
    def explained(self) -> bool:
        """The ledger's book plus the fetched fills equals the broker's."""
        return self.ledger_net_pos + self.fetched_net_pos == self.broker_net_pos

    def row(self) -> PositionDriftRow:
        """This contract as a ``PositionDrift`` row."""
        return PositionDriftRow(
            contract_id=self.contract_id,
            symbol=self.symbol,
            ledger_net_pos=self.ledger_net_pos,
            broker_net_pos=self.broker_net_pos,
            fetched_net_pos=self.fetched_net_pos,
            ledger_avg_price=self.ledger_avg_price,
            broker_net_price=self.broker_net_price,
        )


class Reconciliation(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one account's check, as ``GET /admin/drift`` shows it."""

    account_id: int
    login_id: str
    status: Status
    checked_ns: int
    reason: str = ""
    explained: bool = False
    fetched_fills: int = 0
    contracts: tuple[ContractCheck, ...] = ()

    @property
    def drifted(self) -> tuple[ContractCheck, ...]:
        """The contracts whose two sides disagreed."""
        return tuple(c for c in self.contracts if not c.agrees)


def unknown(account_id: int, login_id: str, now_ns: int, reason: str) -> Reconciliation:
    """The broker's report is missing: nothing is claimed about the account."""
    return Reconciliation(
        account_id=account_id, login_id=login_id, status="unknown", checked_ns=now_ns, reason=reason
    )


def broker_positions(positions: Iterable[wire.Position]) -> dict[int, tuple[int, Decimal | None]]:
    """``contract id -> (netPos, netPrice)`` of a ``position/deps`` answer."""
    out: dict[int, tuple[int, Decimal | None]] = {}
    for position in positions:
        if position.contractId is None:
            continue
        net = int(position.netPos or 0)
        held, price = out.get(position.contractId, (0, None))
        out[position.contractId] = (held + net, position.netPrice if net else price)
    return out


def _signed(fill: FillReceived) -> int:
    return fill.qty if fill.action == "Buy" else -fill.qty


def compare(
    account_id: int,
    login_id: str,
    ledger: Sequence[PositionView],
    broker: Iterable[wire.Position],
    fetched: Sequence[FillReceived],
    names: dict[int, str],
    now_ns: int,
) -> Reconciliation:
    """Both sides of every contract either side knows, and the account's status.

    Args:
        account_id: The account.
        login_id: Its login (reported with the outcome).
        ledger: The ledger's positions of the account.
        broker: The broker's ``position/deps`` answer.
        fetched: Broker fills of the account the ledger did not have.
        names: Contract id -> name, for contracts the ledger never saw.
        now_ns: When the check was made.
    """
    held = broker_positions(broker)
    own = {p.contract_id: p for p in ledger if p.account_id == account_id}
    moved: dict[int, int] = {}
    for fill in fetched:
        moved[fill.contract_id] = moved.get(fill.contract_id, 0) + _signed(fill)
        names.setdefault(fill.contract_id, fill.symbol)
    checks: list[ContractCheck] = []
    for contract_id in sorted(set(held) | set(own) | set(moved)):
        mine = own.get(contract_id)
        net, price = held.get(contract_id, (0, None))
        checks.append(
            ContractCheck(
                contract_id=contract_id,
                symbol=mine.symbol if mine is not None else names.get(contract_id, ""),
                ledger_net_pos=mine.net_pos if mine is not None else 0,
                broker_net_pos=net,
                fetched_net_pos=moved.get(contract_id, 0),
                ledger_avg_price=mine.avg_price if mine is not None else None,
                broker_net_price=price,
            )
        )
    agree = all(c.agrees for c in checks)
    return Reconciliation(
        account_id=account_id,
        login_id=login_id,
        status="ok" if agree else "drift",
        checked_ns=now_ns,
        explained=not agree and all(c.explained for c in checks),
        fetched_fills=len(fetched),
        contracts=tuple(checks),
    )
