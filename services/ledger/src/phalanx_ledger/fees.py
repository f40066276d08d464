"""A venue ``FillFee`` as the ledger records it (ADR-0127; pure, no I/O).

Tradovate reports each amount with a currency id. The fill's fees are totalled in the currency
of its commission (else of its first non-zero amount); an amount in another currency is left
out of the total and counted in ``other_currency``. Known currency ids: 1 = USD (the id
Tradovate's and the simulator's US products carry); another id is shown as ``#<id>``.
"""

from __future__ import annotations

from decimal import Decimal

from phalanx_common.events import FillFees
from phalanx_tradovate import wire

__all__ = ["CURRENCIES", "fill_fees"]

CURRENCIES: dict[int, str] = {1: "USD"}

_PARTS = (
    ("commission", "commission", "commissionCurrencyId"),
    ("exchange_fee", "exchangeFee", "exchangeCurrencyId"),
    ("clearing_fee", "clearingFee", "clearingCurrencyId"),
    ("nfa_fee", "nfaFee", "nfaCurrencyId"),
    ("brokerage_fee", "brokerageFee", "brokerageCurrencyId"),
    ("ip_fee", "ipFee", "ipCurrencyId"),
    ("order_routing_fee", "orderRoutingFee", "orderRoutingCurrencyId"),
)


def _currency(currency_id: int | None) -> str:
    if currency_id is None:
        return ""
    return CURRENCIES.get(currency_id, f"#{currency_id}")


def fill_fees(account_id: int, fee: wire.FillFee, now_ns: int) -> FillFees:
    """The ``FillFees`` event of a venue ``FillFee`` (its id is the fill's id)."""
    amounts = [
        (name, getattr(fee, amount) or Decimal(0), _currency(getattr(fee, currency)))
        for name, amount, currency in _PARTS
    ]
    main = _currency(fee.commissionCurrencyId) if fee.commission else ""
    if not main:
        main = next((cur for _, value, cur in amounts if value and cur), "USD")
    counted = {name: value for name, value, cur in amounts if cur in (main, "")}
    other = sum(1 for _, value, cur in amounts if value and cur not in (main, ""))

    def part(name: str) -> Decimal:
        return counted.get(name, Decimal(0))

    return FillFees(
        event_id=f"fees-{fee.id}",
        ts_event=now_ns,
        ts_init=now_ns,
        fill_id=fee.id,
        account_id=account_id,
        currency=main,
        total=sum(counted.values(), Decimal(0)),
        other_currency=other,
        commission=part("commission"),
        exchange_fee=part("exchange_fee"),
        clearing_fee=part("clearing_fee"),
        nfa_fee=part("nfa_fee"),
        brokerage_fee=part("brokerage_fee"),
        ip_fee=part("ip_fee"),
        order_routing_fee=part("order_routing_fee"),
    )
