"""The contract roll over every day of two years, for every product of the table.

``test_contracts.py`` checks hand-worked roll days; here the rule itself is checked day by
day: ``ROOT1!`` is a listed month whose roll day has not come yet, it moves forward only on
its roll day and only to the next listed month, ``ROOT2!`` is always the month after
``ROOT1!``, and the dated form of what ``ROOT1!`` names resolves to the same contract.
"""

from __future__ import annotations

import datetime as dt

import pytest

from phalanx_common.contracts import MONTH_CODES, Contract, ContractBook

BOOK = ContractBook.load()
START = dt.date(2026, 11, 1)
DAYS = [START + dt.timedelta(days=n) for n in range(2 * 366)]


def _next_listed(contract: Contract) -> tuple[int, int]:
    months = sorted(MONTH_CODES.index(c) + 1 for c in contract.spec.months)
    later = [m for m in months if m > contract.month]
    return (contract.year, later[0]) if later else (contract.year + 1, months[0])


@pytest.mark.parametrize("root", sorted(BOOK.products))
def test_the_front_month_moves_forward_on_its_roll_day_only(root: str) -> None:
    spec = BOOK.products[root]
    previous: Contract | None = None
    rolls = 0
    for today in DAYS:
        front = BOOK.contract(f"{root}1!", today)
        second = BOOK.contract(f"{root}2!", today)
        assert MONTH_CODES[front.month - 1] in spec.months
        assert today < spec.roll_date(front.year, front.month) <= front.last_trade
        assert (second.year, second.month) == _next_listed(front)
        assert BOOK.resolve(front.symbol, today)[0] == front.symbol  # the dated form agrees
        if previous is not None and front != previous:
            assert today == spec.roll_date(previous.year, previous.month)
            assert (front.year, front.month) == _next_listed(previous)
            rolls += 1
        previous = front
    assert rolls >= 2 * len(spec.months) - 1  # two years roll through every listed month
