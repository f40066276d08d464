"""CME calendar rules for futures: last trading day, first notice day, roll date (ADR-0030).

A rule is data (``{"rule": "before_15th", "business_days": 1}``) read from
``contract_specs.json``; each rule kind is one small function of the contract's year and month.
Business days are weekdays: exchange holidays are ignored, so a date computed here can be one
business day later than the exchange's own calendar around a holiday.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DateRule",
    "RollRule",
    "business_day_on_or_before",
    "business_days_before",
    "is_business_day",
    "last_business_day",
    "nth_weekday",
]

_MONDAY, _WEDNESDAY, _FRIDAY = 0, 2, 4
_ONE_DAY = dt.timedelta(days=1)


def is_business_day(day: dt.date) -> bool:
    """Monday to Friday (holidays are not modelled)."""
    return day.weekday() < 5


def business_days_before(day: dt.date, count: int) -> dt.date:
    """The ``count``-th business day strictly before ``day`` (``day`` itself when 0)."""
    while count > 0:
        day -= _ONE_DAY
        if is_business_day(day):
            count -= 1
    return day


def business_day_on_or_before(day: dt.date) -> dt.date:
    """``day`` if it is a business day, else the business day before it."""
    while not is_business_day(day):
        day -= _ONE_DAY
    return day


def last_business_day(year: int, month: int) -> dt.date:
    """The last weekday of a calendar month."""
    return business_day_on_or_before(dt.date(year, month, calendar.monthrange(year, month)[1]))


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date:
    """The ``nth`` (1-based) ``weekday`` (Monday = 0) of a month."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


def _prior_month(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)


@dataclass(frozen=True)
class DateRule:
    """One calendar rule: ``kind`` names the function, the rest are its parameters."""

    kind: str
    business_days: int = 0
    month: str = "contract"  # "contract" or "prior" (only for before_last_business_day)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DateRule:
        """Build from the JSON form; an unknown rule kind or month is an error at load time."""
        rule = cls(
            kind=str(raw["rule"]),
            business_days=int(raw.get("business_days", 0)),
            month=str(raw.get("month", "contract")),
        )
        if rule.kind not in _RULES:
            raise ValueError(f"unknown calendar rule {rule.kind!r}")
        if rule.month not in ("contract", "prior"):
            raise ValueError(f"calendar rule month must be 'contract' or 'prior': {rule.month!r}")
        return rule

    def date(self, year: int, month: int) -> dt.date:
        """The date this rule gives for the contract of ``month``/``year``."""
        return _RULES[self.kind](self, year, month)


def _third_friday(rule: DateRule, year: int, month: int) -> dt.date:
    """Equity index futures: the third Friday of the contract month."""
    return business_days_before(nth_weekday(year, month, _FRIDAY, 3), rule.business_days)


def _before_third_wednesday(rule: DateRule, year: int, month: int) -> dt.date:
    """CME FX futures: business days before the third Wednesday of the contract month."""
    return business_days_before(nth_weekday(year, month, _WEDNESDAY, 3), rule.business_days)


def _before_25th_of_prior_month(rule: DateRule, year: int, month: int) -> dt.date:
    """NYMEX crude: business days before the 25th of the prior month; if the 25th is not a
    business day, counted from the business day before it."""
    prior_year, prior_month = _prior_month(year, month)
    anchor = business_day_on_or_before(dt.date(prior_year, prior_month, 25))
    return business_days_before(anchor, rule.business_days)


def _before_15th(rule: DateRule, year: int, month: int) -> dt.date:
    """CBOT grains: business days before the 15th calendar day of the contract month."""
    return business_days_before(dt.date(year, month, 15), rule.business_days)


def _before_last_business_day(rule: DateRule, year: int, month: int) -> dt.date:
    """Business days before the last business day of the contract (or prior) month."""
    if rule.month == "prior":
        year, month = _prior_month(year, month)
    return business_days_before(last_business_day(year, month), rule.business_days)


_RULES: dict[str, Callable[[DateRule, int, int], dt.date]] = {
    "third_friday": _third_friday,
    "before_third_wednesday": _before_third_wednesday,
    "before_25th_of_prior_month": _before_25th_of_prior_month,
    "before_15th": _before_15th,
    "before_last_business_day": _before_last_business_day,
}


@dataclass(frozen=True)
class RollRule:
    """The front month changes ``calendar_days`` or ``business_days`` before ``before``."""

    before: str  # "last_trade" or "first_notice"
    business_days: int = 0
    calendar_days: int = 0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RollRule:
        """Build from the JSON form."""
        rule = cls(
            before=str(raw["before"]),
            business_days=int(raw.get("business_days", 0)),
            calendar_days=int(raw.get("calendar_days", 0)),
        )
        if rule.before not in ("last_trade", "first_notice"):
            raise ValueError(f"roll 'before' must be last_trade or first_notice: {rule.before!r}")
        return rule

    def roll_date(self, anchor: dt.date) -> dt.date:
        """The roll date for a contract whose ``before`` date is ``anchor``."""
        day = anchor - dt.timedelta(days=self.calendar_days)
        return business_days_before(day, self.business_days)
