"""Positions grouped per strategy and per login, with drift flags (pure, no I/O; ADR-0136).

- :func:`strategy_groups`: the ledger's ``/admin/positions/by-strategy`` rows (the fills each
  strategy's orders got, summed per account and contract — not a venue position, the venue
  nets all strategies) grouped per strategy;
- :func:`login_groups`: ``/admin/positions/by-login/{login}`` answers grouped per login, with
  the accounts the login reaches that hold nothing.

Every row carries its account's latest check with the broker (:class:`AccountCheck` from
``/admin/drift``, ``unchecked`` when the ledger has none), and every group counts its accounts
in drift and in unknown, as the per-account view flags them (ADR-0134).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from phalanx_console.ledger_views import AccountCheck, decimal_or_none

__all__ = ["Group", "GroupRow", "login_groups", "strategy_groups"]


class GroupRow(msgspec.Struct, frozen=True, kw_only=True):
    """One account and contract in a group."""

    account_id: int
    symbol: str
    net_pos: int
    bought: int = 0
    sold: int = 0
    fill_count: int = 0
    avg_price: str = ""
    realized_pnl_money: Decimal | None = None
    currency: str = ""
    check: str = "unchecked"  # drift / unknown / ok / unchecked: the account's latest check


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's or a login's positions."""

    key: str
    name: str
    rows: tuple[GroupRow, ...]
    accounts: tuple[int, ...]
    drift_accounts: tuple[int, ...]
    unknown_accounts: tuple[int, ...]
    realized: tuple[tuple[str, Decimal], ...]  # (currency, realized money), per currency

    @property
    def open_rows(self) -> tuple[GroupRow, ...]:
        """Rows with a net position."""
        return tuple(r for r in self.rows if r.net_pos != 0)

    @property
    def flag(self) -> str:
        """``drift`` if any account drifted, else ``unknown`` if any is unknown, else ``""``."""
        return "drift" if self.drift_accounts else "unknown" if self.unknown_accounts else ""


def _row(position: Mapping[str, Any], checks: Mapping[int, AccountCheck]) -> GroupRow:
    account_id = int(position["account_id"])
    check = checks.get(account_id)
    return GroupRow(
        account_id=account_id,
        symbol=str(position.get("symbol") or f"#{position.get('contract_id')}"),
        net_pos=int(position.get("net_pos") or 0),
        bought=int(position.get("bought") or 0),
        sold=int(position.get("sold") or 0),
        fill_count=int(position.get("fill_count") or 0),
        avg_price=str(position.get("avg_price") or ""),
        realized_pnl_money=decimal_or_none(position.get("realized_pnl_money")),
        currency=str(position.get("currency") or ""),
        check=check.state if check else "unchecked",
    )


def _group(
    key: str,
    name: str,
    rows: Iterable[GroupRow],
    accounts: Iterable[int],
    checks: Mapping[int, AccountCheck],
) -> Group:
    ordered = tuple(sorted(rows, key=lambda r: (r.account_id, r.symbol)))
    every = tuple(sorted(set(accounts) | {r.account_id for r in ordered}))
    realized: dict[str, Decimal] = {}
    for r in ordered:
        if r.realized_pnl_money is not None:
            realized[r.currency] = realized.get(r.currency, Decimal(0)) + r.realized_pnl_money

    def state(account: int) -> str:
        check = checks.get(account)
        return check.state if check else "unchecked"

    return Group(
        key=key,
        name=name,
        rows=ordered,
        accounts=every,
        drift_accounts=tuple(a for a in every if state(a) == "drift"),
        unknown_accounts=tuple(a for a in every if state(a) == "unknown"),
        realized=tuple(sorted(realized.items())),
    )


def _by_account(checks: Iterable[AccountCheck]) -> dict[int, AccountCheck]:
    return {c.account_id: c for c in checks}


def strategy_groups(
    positions: Iterable[Mapping[str, Any]],
    checks: Iterable[AccountCheck],
    names: Mapping[str, str],
) -> list[Group]:
    """One group per strategy in ``positions``, drifted groups first, then by name.

    Args:
        positions: ``/admin/positions/by-strategy`` rows (``strategy_id``, ``account_id``, ...).
        checks: every account's latest check (:func:`~phalanx_console.ledger_views.account_checks`).
        names: strategy id → name (ingest's; ids stand in for the missing ones).
    """
    by_account = _by_account(checks)
    rows: dict[str, list[GroupRow]] = {}
    for position in positions:
        rows.setdefault(str(position.get("strategy_id") or ""), []).append(
            _row(position, by_account)
        )
    groups = [
        _group(key, names.get(key, key or "(unattributed)"), found, (), by_account)
        for key, found in rows.items()
    ]
    return sorted(groups, key=lambda g: (g.flag != "drift", g.flag != "unknown", g.name, g.key))


def login_groups(
    answers: Iterable[Mapping[str, Any]], checks: Iterable[AccountCheck]
) -> list[Group]:
    """One group per ``/admin/positions/by-login/{login}`` answer, drifted first, then by id.

    Args:
        answers: ``{"login_id", "accounts": [ids], "positions": [Position]}`` per login.
        checks: every account's latest check.
    """
    by_account = _by_account(checks)
    groups = []
    for answer in answers:
        login_id = str(answer["login_id"])
        groups.append(
            _group(
                login_id,
                login_id,
                (_row(p, by_account) for p in answer.get("positions") or ()),
                (int(a) for a in answer.get("accounts") or ()),
                by_account,
            )
        )
    return sorted(groups, key=lambda g: (g.flag != "drift", g.flag != "unknown", g.key))
