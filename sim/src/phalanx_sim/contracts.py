"""Contract catalogue: CME products (tick size, point value) and dated symbols like ``MNQZ6``.

A dated symbol is ``<ROOT><month code><1- or 2-digit year>``; ``MNQZ6`` and ``MNQZ26`` name the
same contract, whose canonical (Tradovate) name uses the 1-digit year. Contract, maturity and
product ids are derived from the symbol, so they are stable across resets and restarts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from phalanx_sim.entities import Contract, ContractMaturity, Product

__all__ = ["PRODUCTS", "ContractBook", "ContractInfo", "ProductSpec", "on_tick"]

MONTH_CODES = "FGHJKMNQUVXZ"
_QUARTERLY = "HMUZ"
_ALL = MONTH_CODES


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """Static data of one product: root, tick size, value of one point, listed months, price."""

    name: str
    description: str
    tick_size: float
    value_per_point: float
    months: str
    default_price: float
    exchange_id: int = 1  # CME


PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("MNQ", "Micro E-mini Nasdaq-100", 0.25, 2.0, _QUARTERLY, 21000.00),
    ProductSpec("NQ", "E-mini Nasdaq-100", 0.25, 20.0, _QUARTERLY, 21000.00),
    ProductSpec("MES", "Micro E-mini S&P 500", 0.25, 5.0, _QUARTERLY, 6000.00),
    ProductSpec("ES", "E-mini S&P 500", 0.25, 50.0, _QUARTERLY, 6000.00),
    ProductSpec("M2K", "Micro E-mini Russell 2000", 0.1, 5.0, _QUARTERLY, 2300.0),
    ProductSpec("RTY", "E-mini Russell 2000", 0.1, 50.0, _QUARTERLY, 2300.0),
    ProductSpec("MYM", "Micro E-mini Dow", 1.0, 0.5, _QUARTERLY, 44000.0),
    ProductSpec("YM", "E-mini Dow", 1.0, 5.0, _QUARTERLY, 44000.0),
    ProductSpec("CL", "Crude Oil", 0.01, 1000.0, _ALL, 70.00, 2),
    ProductSpec("MCL", "Micro Crude Oil", 0.01, 100.0, _ALL, 70.00, 2),
    ProductSpec("NG", "Henry Hub Natural Gas", 0.001, 10000.0, _ALL, 3.000, 2),
    ProductSpec("GC", "Gold", 0.1, 100.0, "GJMQVZ", 2650.0, 3),
    ProductSpec("MGC", "Micro Gold", 0.1, 10.0, "GJMQVZ", 2650.0, 3),
    ProductSpec("SI", "Silver", 0.005, 5000.0, "FHKNUZ", 31.000, 3),
    ProductSpec("HG", "Copper", 0.0005, 25000.0, "HKNUZ", 4.2000, 3),
    ProductSpec("ZB", "U.S. Treasury Bond", 1 / 32, 1000.0, _QUARTERLY, 118.0, 4),
    ProductSpec("ZN", "10-Year T-Note", 1 / 64, 1000.0, _QUARTERLY, 110.5, 4),
    ProductSpec("ZF", "5-Year T-Note", 1 / 128, 1000.0, _QUARTERLY, 107.0, 4),
    ProductSpec("6E", "Euro FX", 0.00005, 125000.0, _QUARTERLY, 1.08000),
    ProductSpec("M6E", "Micro Euro FX", 0.0001, 12500.0, _QUARTERLY, 1.0800),
    ProductSpec("6B", "British Pound", 0.0001, 62500.0, _QUARTERLY, 1.2700),
    ProductSpec("6J", "Japanese Yen", 0.0000005, 12500000.0, _QUARTERLY, 0.0066000),
    ProductSpec("MBT", "Micro Bitcoin", 5.0, 0.1, _ALL, 95000.0),
    # Grains are quoted in cents per bushel: tick 1/4 cent, 1 cent = $50 on 5,000 bushels.
    # Appended (not inserted) so the ids of the products above stay as they were.
    ProductSpec("ZC", "Corn", 0.25, 50.0, "HKNUZ", 450.00, 4),
    ProductSpec("ZW", "Chicago SRW Wheat", 0.25, 50.0, "HKNUZ", 550.00, 4),
    ProductSpec("ZS", "Soybeans", 0.25, 50.0, "FHKNQUX", 1050.00, 4),
)

_PRODUCT_ID_BASE = 2_000
_MATURITY_ID_BASE = 3_000_000
_CONTRACT_ID_BASE = 4_000_000
_SYMBOL = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(\d{1,2})$")


def on_tick(price: float, tick_size: float) -> bool:
    """Whether ``price`` is a whole number of ticks (within floating-point noise)."""
    if not math.isfinite(price):
        return False
    ticks = price / tick_size
    return abs(ticks - round(ticks)) < 1e-6


@dataclass(slots=True)
class ContractInfo:
    """A resolved contract with its product and maturity."""

    contract: Contract
    product: Product
    maturity: ContractMaturity
    spec: ProductSpec


class ContractBook:
    """Resolves dated symbols to contracts, created on first use with stable ids."""

    def __init__(self, today: dt.date | None = None) -> None:
        self._today = today or dt.datetime.now(dt.UTC).date()
        self._specs = {spec.name: (index, spec) for index, spec in enumerate(PRODUCTS)}
        self._products: dict[str, Product] = {}
        self._by_name: dict[str, ContractInfo] = {}
        self._by_id: dict[int, ContractInfo] = {}

    def product(self, root: str) -> Product | None:
        """The Product entity of a root symbol (``MNQ``), or ``None`` if unknown."""
        found = self._specs.get(root.upper())
        if found is None:
            return None
        index, spec = found
        product = self._products.get(spec.name)
        if product is None:
            product = Product(
                id=_PRODUCT_ID_BASE + index,
                name=spec.name,
                currencyId=1,
                productType="Futures",
                description=spec.description,
                exchangeId=spec.exchange_id,
                contractGroupId=spec.exchange_id,
                status="Verified",
                months=spec.months,
                valuePerPoint=spec.value_per_point,
                priceFormatType="Decimal",
                priceFormat=-_decimals(spec.tick_size),
                tickSize=spec.tick_size,
            )
            self._products[spec.name] = product
        return product

    def resolve(self, symbol: str) -> ContractInfo | None:
        """Resolve a dated symbol (``MNQZ6``, ``ESH27``); ``None`` unless a listed contract."""
        info = self._by_name.get(symbol)
        if info is not None:
            return info
        match = _SYMBOL.match(symbol.upper())
        if match is None:
            return None
        root, month_code, year_text = match.groups()
        found = self._specs.get(root)
        if found is None:
            return None
        index, spec = found
        if month_code not in spec.months:
            return None
        year = self._year(year_text)
        name = f"{root}{month_code}{year % 10}"
        info = self._by_name.get(name)
        if info is None:
            info = self._create(index, spec, name, year, MONTH_CODES.index(month_code) + 1)
        self._by_name[symbol] = info
        return info

    def by_id(self, contract_id: int) -> ContractInfo | None:
        """A contract already resolved by :meth:`resolve`, by id."""
        return self._by_id.get(contract_id)

    def known(self) -> list[ContractInfo]:
        """Every contract resolved so far."""
        return list(self._by_id.values())

    def suggest(self, text: str, limit: int) -> list[Contract]:
        """Contracts whose name starts with ``text`` (only those already resolved, then roots)."""
        text = text.upper()
        found = [i.contract for i in self._by_id.values() if i.contract.name.startswith(text)]
        return found[:limit]

    def _year(self, text: str) -> int:
        if len(text) == 2:
            return 2000 + int(text)
        digit = int(text)
        start = self._today.year - 1
        for year in range(start, start + 10):
            if year % 10 == digit:
                return year
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(
        self, index: int, spec: ProductSpec, name: str, year: int, month: int
    ) -> ContractInfo:
        product = self.product(spec.name)
        assert product is not None
        offset = index * 10_000 + (year - 2000) * 12 + month
        expiry = _third_friday(year, month)
        maturity = ContractMaturity(
            id=_MATURITY_ID_BASE + offset,
            productId=product.id,
            expirationMonth=month,
            expirationDate=f"{expiry.isoformat()}T13:30:00.000Z",
            isFront=False,
        )
        contract = Contract(
            id=_CONTRACT_ID_BASE + offset,
            name=name,
            contractMaturityId=maturity.id,
            status="DefinitionChecked",
            providerTickSize=spec.tick_size,
        )
        info = ContractInfo(contract=contract, product=product, maturity=maturity, spec=spec)
        self._by_name[name] = info
        self._by_id[contract.id] = info
        return info


def _decimals(tick: float) -> int:
    text = f"{tick:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    first_friday = 1 + (4 - first.weekday()) % 7
    return dt.date(year, month, first_friday + 14)
