"""Shared values answer exactly as fresh ones (ADR-0184): same value and written form."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from phalanx_ledger.fill_records import ZERO, SharedDecimals, plus

# The decimals the ledger sums: prices, P&L (differences times contracts, -0 included), money
# and fees, with exponents below, at and above 0 (a quotient such as 2.1E+4).
DECIMALS = st.one_of(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6
    ),
    st.sampled_from(
        [ZERO, Decimal(0), Decimal("-0"), Decimal("0.00"), Decimal("-0.0"), Decimal("2.1E+4")]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(Decimal),
)


@given(st.lists(DECIMALS, max_size=6))
def test_a_sum_from_zero_is_written_as_the_plain_sum(amounts: list[Decimal]) -> None:
    total = plain = ZERO
    for amount in amounts:
        total = plus(total, amount)
        plain = plain + amount
        assert str(total) == str(plain)


@given(st.lists(DECIMALS, max_size=30), st.integers(min_value=1, max_value=5))
def test_a_shared_decimal_is_written_as_the_one_given(values: list[Decimal], limit: int) -> None:
    pool = SharedDecimals(limit=limit)
    for value in values:
        shared = pool.of(value)
        assert str(shared) == str(value)
        assert len(pool) <= max(limit, 1) + 1  # the pool stays bounded (ZERO kept in it)
