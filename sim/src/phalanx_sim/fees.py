"""Commissions and fees of fills: Tradovate's ``FillFee`` entity (one per fill).

Tradovate reports a fill's costs as a ``FillFee`` — ``clearingFee``, ``exchangeFee``,
``nfaFee``, ``brokerageFee``, ``ipFee``, ``commission``, ``orderRoutingFee``, each with its
currency id — read with ``fillFee/deps?masterid=<fill id>`` (``item``, ``items``, ``ldeps``,
``list`` too). Its fields name no fill, so the simulator gives a fill's ``FillFee`` the fill's
id (how ``ldeps`` answers stay attributable; unconfirmed on Tradovate's demo).

Rates are per contract and per product, set with ``PUT /admin/fees``; without rates a fill's
fees are all zero. The total is taken from the account's cash balance (``amount``), as a
broker does; ``realizedPnL`` stays gross.
"""

# ruff: noqa: N815

from __future__ import annotations

import msgspec

from phalanx_sim.entities import Entity

__all__ = ["USD", "FeeRates", "FillFee", "fill_fee"]

USD = 1  # currency id of every product in the simulator


class FeeRates(msgspec.Struct, kw_only=True):
    """Fees per contract filled, in USD (the body of ``PUT /admin/fees``, with ``product``)."""

    commission: float = 0.0
    exchangeFee: float = 0.0
    clearingFee: float = 0.0
    nfaFee: float = 0.0
    brokerageFee: float = 0.0
    orderRoutingFee: float = 0.0


class FillFee(Entity, kw_only=True, omit_defaults=True):
    """Fees of one fill (``id`` = the fill's id); every field is sent, zeros included."""

    clearingFee: float
    clearingCurrencyId: int
    exchangeFee: float
    exchangeCurrencyId: int
    nfaFee: float
    nfaCurrencyId: int
    brokerageFee: float
    brokerageCurrencyId: int
    ipFee: float
    ipCurrencyId: int
    commission: float
    commissionCurrencyId: int
    orderRoutingFee: float
    orderRoutingCurrencyId: int

    @property
    def total(self) -> float:
        """Every fee of the fill added up (all in USD here)."""
        return round(
            self.clearingFee
            + self.exchangeFee
            + self.nfaFee
            + self.brokerageFee
            + self.ipFee
            + self.commission
            + self.orderRoutingFee,
            2,
        )


def fill_fee(fill_id: int, qty: int, rates: FeeRates | None) -> FillFee:
    """The ``FillFee`` of a fill of ``qty`` contracts at ``rates`` (zeros without rates)."""
    r = rates if rates is not None else FeeRates()
    return FillFee(
        id=fill_id,
        clearingFee=round(r.clearingFee * qty, 2),
        clearingCurrencyId=USD,
        exchangeFee=round(r.exchangeFee * qty, 2),
        exchangeCurrencyId=USD,
        nfaFee=round(r.nfaFee * qty, 2),
        nfaCurrencyId=USD,
        brokerageFee=round(r.brokerageFee * qty, 2),
        brokerageCurrencyId=USD,
        ipFee=0.0,
        ipCurrencyId=USD,
        commission=round(r.commission * qty, 2),
        commissionCurrencyId=USD,
        orderRoutingFee=round(r.orderRoutingFee * qty, 2),
        orderRoutingCurrencyId=USD,
    )
