"""Contract catalogue: dated symbols, stable ids, tick checks."""

from __future__ import annotations

import datetime as dt

import pytest

from phalanx_common.contracts import MONTH_CODES
from phalanx_common.contracts import ContractBook as CommonBook
from phalanx_common.contracts import ProductSpec as CommonSpec
from phalanx_sim.contracts import PRODUCTS, ContractBook, on_tick


def test_one_and_two_digit_years_name_the_same_contract() -> None:
    book = ContractBook(today=dt.date(2025, 11, 1))

    short = book.resolve("MNQZ6")
    long = book.resolve("MNQZ26")

    assert short is not None
    assert long is short
    assert short.contract.name == "MNQZ6"
    assert short.maturity.expirationMonth == 12
    assert short.maturity.expirationDate.startswith("2026-12-18")


def test_ids_are_stable_across_books() -> None:
    first = ContractBook(today=dt.date(2025, 1, 1)).resolve("ESH27")
    second = ContractBook(today=dt.date(2025, 1, 1)).resolve("ESH7")
    assert first is not None
    assert second is not None
    assert first.contract.id == second.contract.id
    assert first.contract.name == "ESH7"


@pytest.mark.parametrize("symbol", ["MNQ1!", "MNQ", "ZZZZ6", "ESF6", "MNQZ", "MNQZ123"])
def test_unknown_symbols_do_not_resolve(symbol: str) -> None:
    assert ContractBook().resolve(symbol) is None


@pytest.mark.parametrize(
    ("symbol", "tick", "point"),
    [("M2KM6", 0.1, 5.0), ("6EU6", 0.00005, 125000.0), ("ZNZ6", 1 / 64, 1000.0)],
)
def test_product_specs(symbol: str, tick: float, point: float) -> None:
    info = ContractBook().resolve(symbol)
    assert info is not None
    assert info.product.tickSize == tick
    assert info.product.valuePerPoint == point


def test_tick_checks() -> None:
    assert on_tick(21000.25, 0.25)
    assert not on_tick(21000.1, 0.25)
    assert on_tick(110.015625, 1 / 64)
    assert on_tick(1.08005, 0.00005)
    assert not on_tick(float("nan"), 0.25)
    assert {p.name for p in PRODUCTS} >= {"MNQ", "NQ", "MES", "ES", "CL", "GC", "ZB", "6E"}


def _common_products() -> list[CommonSpec]:
    return list(CommonBook.load().products.values())


@pytest.mark.parametrize("common", _common_products(), ids=lambda spec: spec.root)
def test_the_venue_lists_every_product_of_the_common_table_with_the_same_terms(
    common: CommonSpec,
) -> None:
    venue = {spec.name: spec for spec in PRODUCTS}.get(common.root)
    assert venue is not None, f"{common.root} is in phalanx_common.contracts but not in the sim"
    assert venue.tick_size == float(common.tick_size)
    assert venue.value_per_point == float(common.point_value)
    assert set(common.months) <= set(venue.months)


@pytest.mark.parametrize("common", _common_products(), ids=lambda spec: spec.root)
def test_the_venue_resolves_every_listed_month_the_common_table_can_send(
    common: CommonSpec,
) -> None:
    book = ContractBook(today=dt.date(2026, 11, 30))
    for code in common.months:
        month = MONTH_CODES.index(code) + 1
        symbol = common.symbol(2027, month)  # Tradovate's name, as the executor sends it
        info = book.resolve(symbol)
        assert info is not None, symbol
        assert info.contract.name == symbol
        assert info.maturity.expirationMonth == month
