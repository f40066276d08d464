"""The futures contract table (``contract_specs.json``) and ticker resolution (ADR-0030).

Accepted tickers, with or without a TradingView exchange prefix (``CME_MINI:``), any case:

- dated: ``MNQZ6``, ``MNQZ26``, ``MNQZ2026`` all name December 2026 and resolve to Tradovate's
  name ``MNQZ6``. A one-digit year is the nearest such year not in the past (in 2029 ``Z0`` is
  2030). A month outside the product's listed months, an expired contract (past its last
  trading day) and a contract more than ``max_years_ahead`` years out are refused;
- continuous: ``MNQ1!`` is the front month (the first listed month whose roll date is still
  ahead), ``MNQ2!`` the listed month after it.

Every refusal is an :class:`UnknownTicker` whose message says why in one sentence.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from typing import Any

from phalanx_common.contract_calendar import DateRule, RollRule

__all__ = ["MONTH_CODES", "Contract", "ContractBook", "ProductSpec", "UnknownTicker"]

MONTH_CODES = "FGHJKMNQUVXZ"
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATED = re.compile(r"^(?P<root>[A-Z0-9]+)(?P<month>[A-Z])(?P<year>\d+)$")
_CONTINUOUS = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<nth>\d+)!$")
_EXAMPLES = "a dated contract such as MNQZ6, MNQZ26 or MNQZ2026, or a continuous one such as MNQ1!"


_THIRD_FRIDAY = DateRule("third_friday")
_ROLL_AT_LAST_TRADE = RollRule("last_trade")


class UnknownTicker(ValueError):
    """The ticker cannot be resolved to a tradable dated contract; the message says why."""


@dataclass(frozen=True)
class ProductSpec:
    """One futures product: contract terms and its calendar."""

    root: str
    tick_size: Decimal
    point_value: Decimal  # currency per 1.0 of price
    description: str = ""
    currency: str = "USD"
    exchange: str = ""
    product_class: str = ""
    months: str = ""  # listed month codes, e.g. "HMUZ"
    last_trade: DateRule = _THIRD_FRIDAY
    first_notice: DateRule | None = None
    roll: RollRule = _ROLL_AT_LAST_TRADE

    def round_to_tick(self, price: Decimal) -> Decimal:
        """The nearest valid price (ties to even ticks), in exact decimal arithmetic."""
        ticks = (price / self.tick_size).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        rounded = (ticks * self.tick_size).normalize()
        if rounded == rounded.to_integral_value():
            return rounded.quantize(Decimal(1))  # 21000, not 2.1E+4
        return rounded

    def last_trade_date(self, year: int, month: int) -> dt.date:
        """Last trading day of the ``month``/``year`` contract (weekdays, holidays ignored)."""
        return self.last_trade.date(year, month)

    def roll_date(self, year: int, month: int) -> dt.date:
        """From this day on, ``ROOT1!`` means the next listed month."""
        rule = self.first_notice if self.roll.before == "first_notice" else self.last_trade
        assert rule is not None  # checked at load time
        return self.roll.roll_date(rule.date(year, month))

    def symbol(self, year: int, month: int) -> str:
        """Tradovate's name of a contract: root, month code, one-digit year (``MNQZ6``)."""
        return f"{self.root}{MONTH_CODES[month - 1]}{year % 10}"


@dataclass(frozen=True)
class Contract:
    """A resolved dated contract."""

    symbol: str  # Tradovate's name, e.g. MNQZ6
    spec: ProductSpec
    year: int
    month: int

    @property
    def last_trade(self) -> dt.date:
        """Its last trading day."""
        return self.spec.last_trade_date(self.year, self.month)


def _month_label(year: int, month: int) -> str:
    return f"{_MONTH_NAMES[month - 1]} {year}"


class ContractBook:
    """Product specs and ticker resolution."""

    def __init__(self, products: dict[str, ProductSpec], max_years_ahead: int = 5) -> None:
        self.products = products
        self.max_years_ahead = max_years_ahead

    @classmethod
    def load(cls) -> ContractBook:
        """Load the packaged ``contract_specs.json``."""
        text = resources.files("phalanx_common").joinpath("contract_specs.json").read_text()
        raw = json.loads(text)
        classes: dict[str, dict[str, Any]] = raw["classes"]
        products = {}
        for root, own in raw["products"].items():
            spec = {**classes[own["class"]], **own}
            first_notice = spec.get("first_notice")
            roll = RollRule.from_json(spec["roll"])
            if roll.before == "first_notice" and first_notice is None:
                raise ValueError(f"{root}: rolls before first notice but has no first_notice rule")
            products[root] = ProductSpec(
                root=root,
                tick_size=Decimal(spec["tick_size"]),
                point_value=Decimal(spec["point_value"]),
                description=spec.get("description", ""),
                currency=spec.get("currency", "USD"),
                exchange=spec.get("exchange", ""),
                product_class=own["class"],
                months=spec["months"],
                last_trade=DateRule.from_json(spec["last_trade"]),
                first_notice=DateRule.from_json(first_notice) if first_notice else None,
                roll=roll,
            )
        return cls(products, max_years_ahead=int(raw.get("max_years_ahead", 5)))

    def resolve(self, ticker: str, today: dt.date) -> tuple[str, ProductSpec]:
        """Return Tradovate's dated symbol for ``ticker`` and its product spec.

        Raises:
            UnknownTicker: the message says why (malformed, unknown product, month not listed,
                expired, too far ahead).
        """
        contract = self.contract(ticker, today)
        return contract.symbol, contract.spec

    def contract(self, ticker: str, today: dt.date) -> Contract:
        """Like :meth:`resolve`, with the contract's year and month."""
        text = ticker.strip().upper()
        if ":" in text:  # TradingView exchange prefix, e.g. CME_MINI:MNQ1!
            text = text.rsplit(":", 1)[1]
        continuous = _CONTINUOUS.match(text)
        if continuous:
            return self._continuous(ticker, continuous["root"], int(continuous["nth"]), today)
        dated = _DATED.match(text)
        if dated:
            return self._dated(ticker, dated["root"], dated["month"], dated["year"], today)
        raise UnknownTicker(f"ticker {ticker!r} is not a futures ticker: send {_EXAMPLES}")

    def product_of(self, symbol: str) -> ProductSpec | None:
        """The product of a Tradovate contract name (``MNQZ6`` -> MNQ), ``None`` if unknown.

        No calendar check: a fill of an expired contract still has a product."""
        dated = _DATED.match(symbol.strip().upper())
        return self.products.get(dated["root"]) if dated else None

    def _spec(self, ticker: str, root: str) -> ProductSpec:
        spec = self.products.get(root)
        if spec is None:
            raise UnknownTicker(f"ticker {ticker!r}: product {root!r} is not in the contract table")
        return spec

    def _continuous(self, ticker: str, root: str, nth: int, today: dt.date) -> Contract:
        spec = self._spec(ticker, root)
        if nth not in (1, 2):
            raise UnknownTicker(
                f"ticker {ticker!r}: only {root}1! (front month) and {root}2! (the month after) "
                "are supported continuous tickers"
            )
        year = today.year - 1  # a contract of next January can roll this December
        listed = [(y, MONTH_CODES.index(c) + 1) for y in range(year, year + 4) for c in spec.months]
        for index, (y, m) in enumerate(listed):
            if today < spec.roll_date(y, m):
                y, m = listed[index + nth - 1]
                return Contract(spec.symbol(y, m), spec, y, m)
        raise UnknownTicker(f"ticker {ticker!r}: {root} has no listed months")  # pragma: no cover

    def _dated(self, ticker: str, root: str, code: str, year_text: str, today: dt.date) -> Contract:
        if root not in self.products and f"{root}{code}" in self.products:
            raise UnknownTicker(
                f"ticker {ticker!r} has no contract month: add a month code and year "
                f"(e.g. {root}{code}Z6) or send {root}{code}1!"
            )
        spec = self._spec(ticker, root)
        if code not in MONTH_CODES:
            raise UnknownTicker(
                f"ticker {ticker!r}: {code!r} is not a futures month code ({MONTH_CODES})"
            )
        month = MONTH_CODES.index(code) + 1
        if code not in spec.months:
            listed = ", ".join(_MONTH_NAMES[MONTH_CODES.index(c)] for c in spec.months)
            raise UnknownTicker(
                f"ticker {ticker!r}: {root} has no {_MONTH_NAMES[month - 1]} contract "
                f"(listed months: {listed})"
            )
        year = self._year(ticker, year_text, today)
        contract = Contract(spec.symbol(year, month), spec, year, month)
        if contract.last_trade < today:
            raise UnknownTicker(
                f"ticker {ticker!r}: {root} {_month_label(year, month)} expired "
                f"(last trading day {contract.last_trade.isoformat()})"
            )
        if year > today.year + self.max_years_ahead:
            hint = (
                " (a one-digit year is the nearest such year not in the past)"
                if len(year_text) == 1
                else ""
            )
            raise UnknownTicker(
                f"ticker {ticker!r} names {root} {_month_label(year, month)}{hint}, more than "
                f"{self.max_years_ahead} years ahead: send a listed contract"
            )
        return contract

    @staticmethod
    def _year(ticker: str, text: str, today: dt.date) -> int:
        if len(text) == 1:
            return today.year + (int(text) - today.year) % 10
        if len(text) == 2:
            return 2000 + int(text)
        if len(text) == 4:
            return int(text)
        raise UnknownTicker(
            f"ticker {ticker!r}: the year must have 1, 2 or 4 digits (Z6, Z26 or Z2026)"
        )
