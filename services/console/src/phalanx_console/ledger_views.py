"""What the positions page shows, made from the ledger's answers (pure, no I/O; ADR-0134).

- :func:`pnl_table`: per strategy or per account (and currency), realized P&L, the venue's
  fees, realized net of fees, unrealized P&L at the last traded price, and the total
  (net + unrealized), from ``/admin/pnl`` and ``/admin/unrealized`` rows of the same ``by``;
- :func:`account_checks`: each account's latest reconciliation with the broker
  (``/admin/drift``) as one of four states — ``drift``, ``unknown`` (the broker's report is
  missing: never shown as ``ok``), ``ok``, or ``unchecked`` (the ledger has no check of it
  yet, e.g. after its restart) — with both sides of each contract;
- :func:`reconcile_summary`: one line about a ``POST /admin/reconcile`` answer.

The ledger's decimals arrive as strings and are added as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

__all__ = [
    "AccountCheck",
    "CheckState",
    "ContractSides",
    "PnlLine",
    "account_checks",
    "decimal_or_none",
    "pnl_table",
    "reconcile_summary",
]

CheckState = Literal["drift", "unknown", "ok", "unchecked"]
_ORDER: dict[CheckState, int] = {"drift": 0, "unknown": 1, "unchecked": 2, "ok": 3}


def decimal_or_none(value: Any) -> Decimal | None:
    """A decimal from the ledger's JSON (decimals come as strings); ``None`` when absent or bad."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


class PnlLine(msgspec.Struct, frozen=True, kw_only=True):
    """P&L of one strategy or account in one currency."""

    key: str
    currency: str
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    net: Decimal = Decimal(0)  # realized - fees
    unrealized: Decimal = Decimal(0)
    total: Decimal = Decimal(0)  # net + unrealized
    fills: int = 0
    fills_without_fees: int = 0  # fees not reported by the venue yet: net is still gross there
    unpriced_fills: int = 0
    open_positions: int = 0
    unpriced_positions: int = 0


def pnl_table(
    realized: Iterable[dict[str, Any]], unrealized: Iterable[dict[str, Any]]
) -> list[PnlLine]:
    """Realized, fees, net and unrealized P&L of each key and currency, sorted by key.

    Args:
        realized: ``/admin/pnl?by=X`` rows (``key``, ``currency``, ``realized_pnl_money``,
            ``fees_money``, ``net_pnl_money``, ``fills``, ``fills_without_fees``, ...).
        unrealized: ``/admin/unrealized?by=X`` rows of the same ``X`` (``key``, ``currency``,
            ``unrealized_pnl_money``, ``positions``, ``unpriced_positions``).
    """
    lines: dict[tuple[str, str], dict[str, Any]] = {}

    def line(row: dict[str, Any]) -> dict[str, Any]:
        key = (str(row.get("key", "")), str(row.get("currency", "")))
        return lines.setdefault(key, {"key": key[0], "currency": key[1]})

    for row in realized:
        values = line(row)
        values["realized"] = decimal_or_none(row.get("realized_pnl_money")) or Decimal(0)
        values["fees"] = decimal_or_none(row.get("fees_money")) or Decimal(0)
        net = decimal_or_none(row.get("net_pnl_money"))
        values["net"] = net if net is not None else values["realized"] - values["fees"]
        values["fills"] = int(row.get("fills") or 0)
        values["fills_without_fees"] = int(row.get("fills_without_fees") or 0)
        values["unpriced_fills"] = int(row.get("unpriced_fills") or 0)
    for row in unrealized:
        values = line(row)
        values["unrealized"] = decimal_or_none(row.get("unrealized_pnl_money")) or Decimal(0)
        values["open_positions"] = int(row.get("positions") or 0)
        values["unpriced_positions"] = int(row.get("unpriced_positions") or 0)
    out = []
    for key in sorted(lines):
        values = lines[key]
        net = values.get("net", Decimal(0))
        out.append(PnlLine(**values, total=net + values.get("unrealized", Decimal(0))))
    return out


class ContractSides(msgspec.Struct, frozen=True, kw_only=True):
    """One contract of a reconciliation: the ledger's side and the broker's."""

    symbol: str
    contract_id: int
    ledger_net_pos: int
    broker_net_pos: int
    fetched_net_pos: int
    ledger_avg_price: str
    broker_net_price: str

    @property
    def agrees(self) -> bool:
        """Both sides held the same net position at the check."""
        return self.ledger_net_pos == self.broker_net_pos


class AccountCheck(msgspec.Struct, frozen=True, kw_only=True):
    """An account's latest reconciliation with the broker, as the page shows it."""

    account_id: int
    state: CheckState
    login_id: str = ""
    checked_ns: int = 0
    reason: str = ""
    explained: bool = False
    fetched_fills: int = 0
    contracts: tuple[ContractSides, ...] = ()

    @property
    def drifted(self) -> tuple[ContractSides, ...]:
        """The contracts whose sides differed."""
        return tuple(c for c in self.contracts if not c.agrees)


def _sides(contract: dict[str, Any]) -> ContractSides:
    return ContractSides(
        symbol=str(contract.get("symbol") or f"#{contract.get('contract_id')}"),
        contract_id=int(contract.get("contract_id") or 0),
        ledger_net_pos=int(contract.get("ledger_net_pos") or 0),
        broker_net_pos=int(contract.get("broker_net_pos") or 0),
        fetched_net_pos=int(contract.get("fetched_net_pos") or 0),
        ledger_avg_price=str(contract.get("ledger_avg_price") or ""),
        broker_net_price=str(contract.get("broker_net_price") or ""),
    )


def _state(status: Any) -> CheckState:
    if status in ("ok", "drift"):
        return "ok" if status == "ok" else "drift"
    return "unknown"  # "unknown", or a status this console does not know: never "ok"


def account_checks(
    reconciliations: Iterable[dict[str, Any]], account_ids: Iterable[int]
) -> list[AccountCheck]:
    """Every account's latest check; accounts the ledger has not checked are ``unchecked``.

    Sorted with what needs a look first: drift, unknown, unchecked, ok; then by account.

    Args:
        reconciliations: ``/admin/drift`` rows.
        account_ids: Accounts the page shows anyway (those with positions).
    """
    checks: dict[int, AccountCheck] = {}
    for row in reconciliations:
        account_id = int(row["account_id"])
        checks[account_id] = AccountCheck(
            account_id=account_id,
            state=_state(row.get("status")),
            login_id=str(row.get("login_id") or ""),
            checked_ns=int(row.get("checked_ns") or 0),
            reason=str(row.get("reason") or ""),
            explained=bool(row.get("explained")),
            fetched_fills=int(row.get("fetched_fills") or 0),
            contracts=tuple(_sides(c) for c in row.get("contracts") or ()),
        )
    for account_id in account_ids:
        checks.setdefault(account_id, AccountCheck(account_id=account_id, state="unchecked"))
    return sorted(checks.values(), key=lambda c: (_ORDER[c.state], c.account_id))


def reconcile_summary(reconciliations: Iterable[dict[str, Any]]) -> str:
    """``"3 accounts checked: 1 drift, 1 unknown, 1 ok"`` (only the states that occurred)."""
    counts: dict[CheckState, int] = {}
    for row in reconciliations:
        state = _state(row.get("status"))
        counts[state] = counts.get(state, 0) + 1
    total = sum(counts.values())
    if total == 0:
        return "no active account to check"
    parts = ", ".join(f"{counts[s]} {s}" for s in ("drift", "unknown", "ok") if s in counts)
    return f"{total} account{'' if total == 1 else 's'} checked: {parts}"
