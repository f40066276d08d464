"""Positions per strategy and per login, with drift flags (pure; ADR-0136)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from phalanx_console.ledger_views import account_checks
from phalanx_console.position_groups import login_groups, strategy_groups

DRIFT = {"account_id": 2, "status": "drift", "contracts": []}
UNKNOWN = {"account_id": 3, "status": "unknown", "reason": "no access token"}
OK = {"account_id": 1, "status": "ok"}


def _position(strategy: str, account: int, net: int, money: str | None) -> dict[str, Any]:
    return {
        "strategy_id": strategy,
        "account_id": account,
        "symbol": "MNQZ6",
        "contract_id": 7,
        "net_pos": net,
        "bought": max(net, 0),
        "sold": max(-net, 0),
        "fill_count": 1,
        "realized_pnl": "0",
        "realized_pnl_money": money,
        "currency": "USD" if money is not None else None,
    }


def test_strategies_are_grouped_with_their_accounts_checks_and_realized_money() -> None:
    checks = account_checks([DRIFT, UNKNOWN, OK], [1, 2, 3, 4])
    rows = [
        _position("trend", 1, 2, "10.5"),
        _position("trend", 4, 2, "-0.5"),
        _position("outside", 2, -1, "20"),
        _position("scalp", 3, 1, None),
    ]
    groups = strategy_groups(rows, checks, {"trend": "Trend follower"})
    # drift first, then unknown, then the rest by name
    assert [g.key for g in groups] == ["outside", "scalp", "trend"]
    outside, scalp, trend = groups
    assert (outside.flag, outside.drift_accounts) == ("drift", (2,))
    assert (scalp.flag, scalp.unknown_accounts) == ("unknown", (3,))
    assert scalp.realized == ()  # unknown product: no money, not zero
    assert trend.name == "Trend follower"
    assert trend.flag == ""
    assert [(r.account_id, r.check) for r in trend.rows] == [(1, "ok"), (4, "unchecked")]
    assert trend.realized == (("USD", Decimal(10)),)
    assert outside.name == "outside"  # no name from ingest: the id


def test_logins_list_every_account_they_reach_and_flag_a_drifted_one() -> None:
    checks = account_checks([DRIFT, OK], [1, 2, 5])
    answers: list[dict[str, Any]] = [
        {"login_id": "quiet", "accounts": [1, 5], "positions": [_position("", 1, 0, "3")]},
        {"login_id": "busy", "accounts": [2], "positions": [_position("", 2, 1, "0")]},
        {"login_id": "empty", "accounts": [], "positions": []},
    ]
    groups = login_groups(answers, checks)
    assert [g.key for g in groups] == ["busy", "empty", "quiet"]
    busy, empty, quiet = groups
    assert busy.flag == "drift"
    assert [r.check for r in busy.rows] == ["drift"]
    assert quiet.accounts == (1, 5)  # 5 holds nothing, still listed
    assert quiet.open_rows == ()
    assert quiet.flag == ""
    assert empty.accounts == ()
