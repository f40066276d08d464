"""The contract table and ticker resolution (ADR-0030).

Every expected symbol below is worked out by hand from the exchange's rule, with business days
= weekdays, in the comment next to it; none is computed by the code under test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from phalanx_common.contract_calendar import DateRule, RollRule
from phalanx_common.contracts import ContractBook, UnknownTicker

BOOK = ContractBook.load()
D = dt.date


@pytest.mark.parametrize(
    ("today", "ticker", "expected"),
    [
        # Equity index, HMUZ: Mar 2027 last trades on the 3rd Friday, Fri 19 Mar; the roll is
        # 8 calendar days earlier, Thu 11 Mar.
        (D(2027, 3, 10), "ES1!", "ESH7"),
        (D(2027, 3, 11), "ES1!", "ESM7"),
        (D(2027, 3, 10), "MES2!", "MESM7"),
        (D(2027, 3, 11), "MES2!", "MESU7"),
        (D(2027, 3, 10), "NQ1!", "NQH7"),
        (D(2027, 3, 11), "MNQ1!", "MNQM7"),
        (D(2027, 3, 10), "YM1!", "YMH7"),
        (D(2027, 3, 11), "MYM1!", "MYMM7"),
        (D(2027, 3, 10), "RTY1!", "RTYH7"),
        (D(2027, 3, 11), "M2K1!", "M2KM7"),
        # Dec 2026: 3rd Friday is 18 Dec, roll Thu 10 Dec.
        (D(2026, 12, 9), "MNQ1!", "MNQZ6"),
        (D(2026, 12, 10), "MNQ1!", "MNQH7"),
        # Crude, monthly. Jan 2027 (F7): the 25th of Dec 2026 is a Friday (a weekday), last
        # trade 3 business days before it = Tue 22 Dec; roll 3 business days before that =
        # Thu 17 Dec.
        (D(2026, 12, 16), "CL1!", "CLF7"),
        (D(2026, 12, 17), "CL1!", "CLG7"),
        (D(2026, 12, 16), "CL2!", "CLG7"),
        (D(2026, 12, 17), "CL2!", "CLH7"),
        # May 2027 (K7): the 25th of Apr 2027 is a Sunday, so count from the business day
        # before it (Fri 23 Apr): CL last trade Tue 20 Apr, roll Thu 15 Apr.
        (D(2027, 4, 14), "CL1!", "CLK7"),
        (D(2027, 4, 15), "CL1!", "CLM7"),
        # MCL stops one business day before CL: Mon 19 Apr, roll 3 before = Wed 14 Apr.
        (D(2027, 4, 13), "MCL1!", "MCLK7"),
        (D(2027, 4, 14), "MCL1!", "MCLM7"),
        # Natural gas, monthly. Feb 2027 (G7): last trade is the 3rd last business day of
        # Jan 2027 (29, 28, 27) = Wed 27 Jan; roll 3 business days before = Fri 22 Jan.
        (D(2027, 1, 21), "NG1!", "NGG7"),
        (D(2027, 1, 22), "NG1!", "NGH7"),
        # Metals. GC Apr 2027 (J7): first notice = last business day of Mar 2027 = Wed 31 Mar;
        # roll 3 business days before = Fri 26 Mar.
        (D(2027, 3, 25), "GC1!", "GCJ7"),
        (D(2027, 3, 26), "GC1!", "GCM7"),
        (D(2027, 3, 25), "MGC2!", "MGCM7"),
        (D(2027, 3, 26), "MGC2!", "MGCQ7"),
        # SI Mar 2027 (H7, HKNUZ): first notice Fri 26 Feb; roll Tue 23 Feb.
        (D(2027, 2, 22), "SI1!", "SIH7"),
        (D(2027, 2, 23), "SI1!", "SIK7"),
        # HG May 2027 (K7): first notice Fri 30 Apr; roll Tue 27 Apr.
        (D(2027, 4, 26), "HG1!", "HGK7"),
        (D(2027, 4, 27), "HG1!", "HGN7"),
        # Rates, HMUZ. Mar 2027: first notice = last business day of Feb = Fri 26 Feb; roll
        # 3 business days before = Tue 23 Feb.
        (D(2027, 2, 22), "ZB1!", "ZBH7"),
        (D(2027, 2, 23), "ZB1!", "ZBM7"),
        (D(2027, 2, 22), "ZN1!", "ZNH7"),
        (D(2027, 2, 23), "ZN1!", "ZNM7"),
        (D(2027, 2, 22), "ZF1!", "ZFH7"),
        (D(2027, 2, 23), "ZF2!", "ZFU7"),
        # FX, HMUZ. Mar 2027: 3rd Wednesday = 17 Mar, last trade 2 business days before =
        # Mon 15 Mar; roll 5 business days before = Mon 8 Mar.
        (D(2027, 3, 5), "6E1!", "6EH7"),
        (D(2027, 3, 8), "6E1!", "6EM7"),
        (D(2027, 3, 5), "M6E1!", "M6EH7"),
        (D(2027, 3, 8), "6B1!", "6BM7"),
        # Dec 2026: 3rd Wednesday 16 Dec, last trade Mon 14 Dec, roll Mon 7 Dec.
        (D(2026, 12, 4), "6J1!", "6JZ6"),
        (D(2026, 12, 7), "6J1!", "6JH7"),
        # Grains. ZC Mar 2027 (HKNUZ): first notice Fri 26 Feb; roll Tue 23 Feb.
        (D(2027, 2, 22), "ZC1!", "ZCH7"),
        (D(2027, 2, 23), "ZC1!", "ZCK7"),
        (D(2027, 2, 23), "ZW1!", "ZWK7"),
        # ZS Jan 2027 (FHKNQUX): first notice = last business day of Dec 2026 = Thu 31 Dec;
        # roll 3 business days before = Mon 28 Dec.
        (D(2026, 12, 25), "ZS1!", "ZSF7"),
        (D(2026, 12, 28), "ZS1!", "ZSH7"),
        (D(2026, 12, 28), "ZS2!", "ZSK7"),
        # Year end: Dec 2029 rolls Thu 13 Dec 2029 (3rd Friday 21 Dec), front is then Mar 2030.
        (D(2029, 12, 13), "ES1!", "ESH0"),
        # Exchange prefixes and case.
        (D(2026, 12, 9), "CME_MINI:MNQ1!", "MNQZ6"),
        (D(2026, 12, 16), "nymex:cl1!", "CLF7"),
        (D(2027, 2, 22), " CBOT:ZN1! ", "ZNH7"),
    ],
)
def test_continuous_tickers_follow_each_product_classes_roll_calendar(
    today: dt.date, ticker: str, expected: str
) -> None:
    assert BOOK.resolve(ticker, today)[0] == expected


@pytest.mark.parametrize(
    ("today", "ticker", "expected"),
    [
        (D(2026, 11, 30), "MNQZ6", "MNQZ6"),
        (D(2026, 11, 30), "MNQZ26", "MNQZ6"),
        (D(2026, 11, 30), "MNQZ2026", "MNQZ6"),
        (D(2026, 11, 30), "mnqz2026", "MNQZ6"),
        (D(2026, 11, 30), "CME_MINI:MNQZ2026", "MNQZ6"),
        (D(2026, 11, 30), "ESH2027", "ESH7"),
        # A dated contract past its roll date but not its last trading day is still tradable:
        # ESZ6 rolls on 10 Dec 2026 and last trades on Fri 18 Dec.
        (D(2026, 12, 18), "ESZ6", "ESZ6"),
        # Decade wrap: in 2029 a one-digit 0 is 2030 and 9 is 2029 (Dec 2029 last trades on
        # Fri 21 Dec 2029, still ahead on 1 Oct).
        (D(2029, 10, 1), "MNQZ0", "MNQZ0"),
        (D(2029, 10, 1), "MNQZ9", "MNQZ9"),
        (D(2029, 10, 1), "MNQH2030", "MNQH0"),
        # Last trading day itself is accepted: ZF Mar 2027 trades until the last business day
        # of March, Wed 31 Mar; ZN until 7 business days before it, Mon 22 Mar.
        (D(2027, 3, 31), "ZFH7", "ZFH7"),
        (D(2027, 3, 22), "ZNH7", "ZNH7"),
        # CL May 2027 last trades Tue 20 Apr 2027 (see the roll table).
        (D(2027, 4, 20), "CLK2027", "CLK7"),
        # Grains stop the business day before the 15th: Aug 15 2027 is a Sunday, so ZS Aug 2027
        # last trades on Fri 13 Aug.
        (D(2027, 8, 13), "ZSQ7", "ZSQ7"),
        # GC Apr 2027: 3rd last business day of April (30, 29, 28) = Wed 28 Apr.
        (D(2027, 4, 28), "GCJ7", "GCJ7"),
    ],
)
def test_dated_tickers_normalise_to_tradovates_one_digit_year(
    today: dt.date, ticker: str, expected: str
) -> None:
    assert BOOK.resolve(ticker, today)[0] == expected


@pytest.mark.parametrize(
    ("today", "ticker", "last_trade"),
    [
        (D(2026, 11, 30), "MNQZ2025", "2025-12-19"),  # 3rd Friday of Dec 2025
        (D(2026, 12, 19), "ESZ6", "2026-12-18"),
        (D(2027, 4, 1), "ZFH7", "2027-03-31"),
        (D(2027, 3, 23), "ZNH7", "2027-03-22"),
        (D(2027, 3, 23), "ZBH7", "2027-03-22"),
        (D(2027, 4, 21), "CLK7", "2027-04-20"),
        (D(2027, 4, 20), "MCLK7", "2027-04-19"),
        (D(2027, 8, 14), "ZSQ7", "2027-08-13"),
        (D(2027, 4, 29), "GCJ7", "2027-04-28"),
        (D(2026, 12, 15), "6JZ6", "2026-12-14"),
        (D(2029, 12, 22), "MNQZ9", "2029-12-21"),
    ],
)
def test_expired_contracts_are_refused_with_their_last_trading_day(
    today: dt.date, ticker: str, last_trade: str
) -> None:
    with pytest.raises(UnknownTicker, match=f"expired \\(last trading day {last_trade}\\)"):
        BOOK.resolve(ticker, today)


def test_a_stale_one_digit_year_names_the_next_decade_and_is_refused_as_too_far() -> None:
    # In Jan 2027 "MNQH6" means Mar 2036 (the nearest year ending in 6 not in the past).
    with pytest.raises(UnknownTicker, match=r"names MNQ Mar 2036 .*nearest such year"):
        BOOK.resolve("MNQH6", D(2027, 1, 5))
    with pytest.raises(UnknownTicker, match="more than 5 years ahead"):
        BOOK.resolve("MNQZ2036", D(2026, 11, 30))


@pytest.mark.parametrize(
    ("ticker", "message"),
    [
        ("ESF6", "ES has no Jan contract \\(listed months: Mar, Jun, Sep, Dec\\)"),
        ("GCH7", "GC has no Mar contract"),
        ("ZCF7", "ZC has no Jan contract"),
        ("SIF7", "SI has no Jan contract"),
        ("XYZZ6", "product 'XYZ' is not in the contract table"),
        ("XYZ1!", "product 'XYZ' is not in the contract table"),
        ("NYMEX:FOO2!", "product 'FOO' is not in the contract table"),
        ("ES3!", "only ES1! \\(front month\\) and ES2!"),
        ("MNQZ026", "the year must have 1, 2 or 4 digits"),
        ("MNQA6", "'A' is not a futures month code"),
        ("MNQ6", "has no contract month"),
        ("MNQ", "is not a futures ticker"),
        ("", "is not a futures ticker"),
        ("MNQ!", "is not a futures ticker"),
        ("MNQ-Z6", "is not a futures ticker"),
    ],
)
def test_unresolvable_tickers_say_why(ticker: str, message: str) -> None:
    with pytest.raises(UnknownTicker, match=message):
        BOOK.resolve(ticker, D(2026, 11, 30))


@pytest.mark.parametrize(
    ("root", "price", "expected"),
    [
        ("ZB", "118.04", "118.03125"),  # 3777.28 ticks of 1/32 -> 3777
        ("ZN", "110.01", "110.015625"),  # 7040.64 ticks of 1/64 -> 7041
        ("ZF", "107.004", "107.0078125"),  # 13696.512 ticks of 1/128 -> 13697
        ("ZF", "107.00390625", "107"),  # exactly 13696.5 ticks: ties go to the even 13696
        ("6J", "0.00660026", "0.0066005"),  # 13200.52 ticks of 0.0000005 -> 13201
        ("6J", "0.0066", "0.0066"),
        ("ZC", "450.13", "450.25"),  # cents per bushel, 1800.52 quarter-cents -> 1801
        ("ES", "21000.00", "21000"),
        ("MNQ", "21000.13", "21000.25"),
    ],
)
def test_prices_round_to_the_nearest_tick_exactly(root: str, price: str, expected: str) -> None:
    rounded = BOOK.products[root].round_to_tick(Decimal(price))
    assert rounded == Decimal(expected)
    assert str(rounded) == expected  # no float residue, no exponent notation


@pytest.mark.parametrize(
    ("root", "tick", "point", "description"),
    [
        ("ES", "0.25", "50", "E-mini S&P 500"),
        ("MYM", "1", "0.5", "Micro E-mini Dow"),
        ("MCL", "0.01", "100", "Micro WTI Crude Oil"),
        ("NG", "0.001", "10000", "Henry Hub Natural Gas"),
        ("HG", "0.0005", "25000", "Copper"),
        ("ZF", "0.0078125", "1000", "5-Year T-Note"),
        ("6J", "0.0000005", "12500000", "Japanese Yen"),
        ("ZS", "0.25", "50", "Soybeans (cents per bushel)"),
    ],
)
def test_product_terms(root: str, tick: str, point: str, description: str) -> None:
    spec = BOOK.products[root]
    assert (spec.tick_size, spec.point_value) == (Decimal(tick), Decimal(point))
    assert spec.description == description
    assert spec.currency == "USD"


def test_the_table_has_every_required_product() -> None:
    required = "ES MES NQ MNQ YM MYM RTY M2K CL MCL NG GC MGC SI HG ZB ZN ZF 6E 6J ZC ZS"
    assert set(required.split()) <= set(BOOK.products)


@pytest.mark.parametrize("root", sorted(BOOK.products))
def test_every_contract_rolls_before_its_last_trading_day(root: str) -> None:
    # Continuous tickers must never point at a contract in its final days, whatever the class.
    spec = BOOK.products[root]
    for year in (2026, 2027, 2028):
        for code in spec.months:
            month = "FGHJKMNQUVXZ".index(code) + 1
            assert spec.roll_date(year, month) < spec.last_trade_date(year, month)


def test_a_calendar_rule_the_code_does_not_know_fails_at_load() -> None:
    with pytest.raises(ValueError, match="unknown calendar rule 'fourth_friday'"):
        DateRule.from_json({"rule": "fourth_friday"})
    with pytest.raises(ValueError, match="must be last_trade or first_notice"):
        RollRule.from_json({"before": "expiry", "business_days": 3})


@pytest.mark.parametrize(
    ("symbol", "root", "point_value"),
    [("MNQZ6", "MNQ", Decimal(2)), ("ESH7", "ES", Decimal(50)), ("M2KZ6", "M2K", Decimal(5))],
)
def test_product_of_a_contract_name_is_its_root(
    symbol: str, root: str, point_value: Decimal
) -> None:
    spec = BOOK.product_of(symbol)
    assert spec is not None
    assert (spec.root, spec.point_value) == (root, point_value)


@pytest.mark.parametrize("symbol", ["ZZZZ6", "MNQ", "MNQ1!", ""])
def test_product_of_an_unknown_or_undated_name_is_none(symbol: str) -> None:
    assert BOOK.product_of(symbol) is None
