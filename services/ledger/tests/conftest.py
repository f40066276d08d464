"""Fixtures: a real ledger service on a free port over a real nats-server; the builders of the
fills and order outcomes the ledger tests publish (one place, not a copy per test module)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio

from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived, OrderAccepted

T0 = int(dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def fill_event(
    fill_id: int,
    order_id: int,
    account_id: int,
    action: str,
    qty: int,
    price: str,
    *,
    symbol: str = "MNQZ6",
    ts_event: int | None = None,
    event_id: str | None = None,
) -> FillReceived:
    """A fill at ``T0 + fill_id`` (unless ``ts_event``) of an MNQ contract (else another)."""
    return FillReceived(
        event_id=event_id or f"fill-{fill_id}",
        ts_event=T0 + fill_id if ts_event is None else ts_event,
        ts_init=T0 + fill_id,
        fill_id=fill_id,
        order_id=order_id,
        account_id=account_id,
        contract_id=3570918 if symbol.startswith("MNQ") else 4000001,
        symbol=symbol,
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal(price),
    )


def accepted_order(
    order_id: int,
    account_id: int,
    strategy_id: str,
    oso1: int,
    *,
    intent_id: str | None = None,
    signal_id: str | None = None,
) -> OrderAccepted:
    """An accepted MNQ order of a strategy with one bracket leg (``oso1``)."""
    return OrderAccepted(
        event_id=f"accepted-{order_id}",
        ts_event=T0,
        ts_init=T0,
        intent_id=intent_id or f"int-{order_id}",
        signal_id=signal_id or f"sig-{strategy_id}",
        strategy_id=strategy_id,
        account_id=account_id,
        login_id="login-a",
        symbol="MNQZ6",
        order_id=order_id,
        oso1_id=oso1,
    )


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A NATS connection for the test to publish fills and orders with."""
    connection = await Bus.connect(nats_url, "test")
    await connection.ensure_topology()
    try:
        yield connection
    finally:
        await connection.close()
