"""Contract specifications (data in ``contract_specs.json``) and ticker resolution.

A dated ticker (``MNQZ6``, ``ESH27``) passes through after its root is checked. A TradingView
continuous ticker (``MNQ1!``) resolves to the front dated contract by the product's roll rule:
the front month is the next cycle month whose roll date (expiry minus ``roll_days``) is still
ahead. Tradovate writes the year with one digit (``Z6``). See ADR-0005.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources

__all__ = ["ContractBook", "ProductSpec", "UnknownTicker"]

MONTH_CODES = "FGHJKMNQUVXZ"
_DATED = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")
_CONTINUOUS = re.compile(r"^(?P<root>[A-Z0-9]+?)1!$")


class UnknownTicker(ValueError):
    """The ticker cannot be resolved to a tradable dated contract; the message says why."""


@dataclass(frozen=True)
class ProductSpec:
    """One futures product."""

    root: str
    tick_size: Decimal
    point_value: Decimal
    cycle: str = ""
    expiry: str = ""
    roll_days: int = 0

    def round_to_tick(self, price: Decimal) -> Decimal:
        """The nearest valid price (ties to even ticks)."""
        ticks = (price / self.tick_size).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return (ticks * self.tick_size).normalize()


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


class ContractBook:
    """Product specs and ticker resolution."""

    def __init__(self, products: dict[str, ProductSpec]) -> None:
        self.products = products

    @classmethod
    def load(cls) -> ContractBook:
        """Load the packaged ``contract_specs.json``."""
        text = resources.files("phalanx_executor").joinpath("contract_specs.json").read_text()
        raw = json.loads(text)["products"]
        products = {}
        for root, spec in raw.items():
            cont = spec.get("continuous", {})
            products[root] = ProductSpec(
                root=root,
                tick_size=Decimal(spec["tick_size"]),
                point_value=Decimal(spec["point_value"]),
                cycle=cont.get("months", ""),
                expiry=cont.get("expiry", ""),
                roll_days=int(cont.get("roll_days", 0)),
            )
        return cls(products)

    def resolve(self, ticker: str, today: dt.date) -> tuple[str, ProductSpec]:
        """Return the dated symbol to trade for ``ticker`` and its product spec.

        Raises:
            UnknownTicker: for an unknown root, a malformed ticker, or a continuous ticker of a
                product without a roll rule.
        """
        text = ticker.strip().upper()
        if ":" in text:  # TradingView exchange prefix, e.g. CME_MINI:MNQ1!
            text = text.split(":", 1)[1]
        cont = _CONTINUOUS.match(text)
        if cont:
            spec = self._spec(cont["root"], ticker)
            return self._front_month(spec, today), spec
        dated = _DATED.match(text)
        if dated:
            spec = self._spec(dated["root"], ticker)
            return text, spec
        raise UnknownTicker(
            f"ticker {ticker!r} is neither a dated contract (e.g. MNQZ6) nor a continuous one "
            "(e.g. MNQ1!)"
        )

    def _spec(self, root: str, ticker: str) -> ProductSpec:
        spec = self.products.get(root)
        if spec is None:
            raise UnknownTicker(f"ticker {ticker!r}: unknown product root {root!r}")
        return spec

    def _front_month(self, spec: ProductSpec, today: dt.date) -> str:
        if not spec.cycle or spec.expiry != "third_friday":
            raise UnknownTicker(
                f"{spec.root}1!: no roll rule for {spec.root}; send a dated contract instead"
            )
        year = today.year
        for _ in range(3):
            for code in spec.cycle:
                month = MONTH_CODES.index(code) + 1
                roll = _third_friday(year, month) - dt.timedelta(days=spec.roll_days)
                if today < roll:
                    return f"{spec.root}{code}{year % 10}"
            year += 1
        raise UnknownTicker(f"{spec.root}1!: no front month found")  # pragma: no cover
