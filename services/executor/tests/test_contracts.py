"""Ticker resolution and the roll calendar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from phalanx_executor.contracts import ContractBook, UnknownTicker

BOOK = ContractBook.load()


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 11, 25), "MNQZ6"),  # Dec 2026 expires Fri 18 Dec; rolls Thu 10 Dec
        (dt.date(2026, 12, 9), "MNQZ6"),
        (dt.date(2026, 12, 10), "MNQH7"),  # roll day: the March contract is front
        (dt.date(2027, 3, 10), "MNQH7"),  # Mar 2027 expires Fri 19 Mar; rolls Thu 11 Mar
        (dt.date(2027, 3, 11), "MNQM7"),
        (dt.date(2027, 1, 4), "MNQH7"),
    ],
)
def test_continuous_ticker_resolves_to_the_front_month_by_the_roll_calendar(
    today: dt.date, expected: str
) -> None:
    symbol, spec = BOOK.resolve("MNQ1!", today)
    assert symbol == expected
    assert spec.root == "MNQ"


def test_dated_ticker_passes_through_and_exchange_prefix_is_dropped() -> None:
    assert BOOK.resolve("ESH7", dt.date(2026, 11, 25))[0] == "ESH7"
    assert BOOK.resolve("CME_MINI:ES1!", dt.date(2026, 11, 25))[0] == "ESZ6"


def test_unknown_root_is_rejected_with_the_root_named() -> None:
    with pytest.raises(UnknownTicker, match="unknown product root 'XYZ'"):
        BOOK.resolve("XYZZ6", dt.date(2026, 11, 25))


def test_continuous_ticker_without_a_roll_rule_asks_for_a_dated_contract() -> None:
    with pytest.raises(UnknownTicker, match="send a dated contract"):
        BOOK.resolve("CL1!", dt.date(2026, 11, 25))


def test_malformed_ticker_is_rejected() -> None:
    with pytest.raises(UnknownTicker, match="neither a dated contract"):
        BOOK.resolve("MNQ", dt.date(2026, 11, 25))


@pytest.mark.parametrize(
    ("root", "price", "expected"),
    [
        ("MNQ", "21000.13", "21000.25"),  # 84000.52 ticks -> 84001
        ("MNQ", "21000.10", "21000"),
        ("ES", "5000.38", "5000.5"),
        ("CL", "71.234", "71.23"),
    ],
)
def test_prices_round_to_the_nearest_tick(root: str, price: str, expected: str) -> None:
    assert BOOK.products[root].round_to_tick(Decimal(price)) == Decimal(expected)
