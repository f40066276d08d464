"""What the positions page makes of the ledger's answers (pure functions, ADR-0134)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from phalanx_console.ledger_views import account_checks, pnl_table, reconcile_summary


def _realized(key: str, realized: str, fees: str, net: str, **more: Any) -> dict[str, Any]:
    return {
        "key": key,
        "currency": "USD",
        "realized_pnl_money": realized,
        "fees_money": fees,
        "net_pnl_money": net,
        "fills": 4,
        "unpriced_fills": 0,
        "fills_without_fees": 0,
        **more,
    }


def _unrealized(key: str, money: str, positions: int = 1) -> dict[str, Any]:
    return {
        "key": key,
        "currency": "USD",
        "unrealized_pnl_money": money,
        "positions": positions,
        "unpriced_positions": 0,
    }


def test_each_strategy_shows_realized_fees_net_unrealized_and_their_total() -> None:
    # the ledger README's worked example: trend $40 realized, $3 fees; outside -$20, $2.25
    # fees and long 1 marked $20 up
    lines = pnl_table(
        [
            _realized("trend", "40", "3", "37"),
            _realized("outside", "-20", "2.25", "-22.25", fills_without_fees=1),
        ],
        [_unrealized("outside", "20")],
    )
    by_key = {line.key: line for line in lines}
    assert [line.key for line in lines] == ["outside", "trend"]
    trend, outside = by_key["trend"], by_key["outside"]
    assert (trend.realized, trend.fees, trend.net) == (Decimal(40), Decimal(3), Decimal(37))
    assert (trend.unrealized, trend.total, trend.open_positions) == (Decimal(0), Decimal(37), 0)
    assert outside.net == Decimal("-22.25")
    assert outside.unrealized == Decimal(20)
    assert outside.total == Decimal("-2.25")
    assert outside.fills_without_fees == 1
    assert outside.open_positions == 1


def test_a_position_without_fills_of_its_key_yet_and_other_currencies_get_their_own_lines() -> None:
    lines = pnl_table(
        [_realized("7", "10", "1.5", "8.5"), {**_realized("7", "5", "0", "5"), "currency": "EUR"}],
        [_unrealized("7", "-4"), _unrealized("9", "12.5", positions=2)],
    )
    assert [(line.key, line.currency) for line in lines] == [
        ("7", "EUR"),
        ("7", "USD"),
        ("9", "USD"),
    ]
    eur, usd, nine = lines
    assert eur.total == Decimal(5)  # no EUR position: nothing unrealized in EUR
    assert usd.total == Decimal("4.5")  # 8.5 net - 4 unrealized
    assert (nine.realized, nine.fills, nine.unrealized, nine.open_positions) == (
        Decimal(0),
        0,
        Decimal("12.5"),
        2,
    )


def test_net_is_computed_when_an_older_ledger_does_not_send_it() -> None:
    old = {"key": "s", "currency": "USD", "realized_pnl_money": "12.5", "fills": 2}
    (line,) = pnl_table([old], [])
    assert (line.fees, line.net, line.total) == (Decimal(0), Decimal("12.5"), Decimal("12.5"))


def _check(account_id: int, status: str, **more: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "login_id": "login-1",
        "status": status,
        "checked_ns": 1_767_225_600_000_000_000,
        "reason": "",
        "explained": False,
        "fetched_fills": 0,
        "contracts": [],
        **more,
    }


def test_drift_and_unknown_come_first_and_unknown_is_never_ok() -> None:
    sides = {
        "contract_id": 3,
        "symbol": "MNQZ6",
        "ledger_net_pos": 2,
        "broker_net_pos": 1,
        "fetched_net_pos": -1,
        "ledger_avg_price": "21000",
        "broker_net_price": "21000.00",
    }
    agreeing = {**sides, "contract_id": 4, "symbol": "ESZ6", "broker_net_pos": 2}
    checks = account_checks(
        [
            _check(1, "ok"),
            _check(2, "unknown", reason="position/deps: 503"),
            _check(3, "drift", explained=True, fetched_fills=1, contracts=[sides, agreeing]),
            _check(4, "stale"),  # a status this console does not know
        ],
        [5, 1],
    )
    assert [(c.account_id, c.state) for c in checks] == [
        (3, "drift"),
        (2, "unknown"),
        (4, "unknown"),
        (5, "unchecked"),
        (1, "ok"),
    ]
    drift = checks[0]
    assert drift.explained
    assert [(s.symbol, s.ledger_net_pos, s.broker_net_pos) for s in drift.drifted] == [
        ("MNQZ6", 2, 1)
    ]
    assert len(drift.contracts) == 2
    assert checks[1].reason == "position/deps: 503"
    assert checks[3].checked_ns == 0


def test_the_summary_of_a_reconcile_counts_each_outcome() -> None:
    answer = [_check(1, "ok"), _check(2, "drift"), _check(3, "unknown"), _check(4, "ok")]
    assert reconcile_summary(answer) == "4 accounts checked: 1 drift, 1 unknown, 2 ok"
    assert reconcile_summary([_check(1, "ok")]) == "1 account checked: 1 ok"
    assert reconcile_summary([]) == "no active account to check"
