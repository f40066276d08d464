"""Unrealized P&L marked by the venue's quotes, over a real nats-server and the simulator.

The ledger follows the simulator's market-data socket (ADR-0128) with the token of a login
from the tokens bucket (sealed as auth seals it); fills arrive on FILLS as the executor
publishes them. Prices move only at the simulator (``POST /admin/prices``): no fill happens.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import encode
from phalanx_common.crypto import KeyRing, seal_token
from phalanx_common.events import FillReceived
from phalanx_common.records import TokenRecord
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_sim.runner import Simulator
from phalanx_sim.testing import login_body
from phalanx_sim.testing import simulator as simulator
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = "ledger-admin-token-for-quote-tests-41ab"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = "t1:" + base64.b64encode(bytes(range(32))).decode()
ACCOUNT = 7001


async def _store_token(bus: Bus, sim: Simulator, name: str) -> str:
    """A login at the simulator whose token sits in the tokens bucket, as auth leaves it."""
    created = sim.create_user(name, "pw-" + name, 1)
    async with httpx.AsyncClient(timeout=10.0) as client:
        answer = await client.post(
            sim.rest_url + "/auth/accesstokenrequest", json=login_body(name, "pw-" + name)
        )
    body = answer.json()
    record = TokenRecord(
        login_id=f"login-{name}",
        user_id=created.userId,
        access_token=body["accessToken"],
        expiration_time=body["expirationTime"],
    )
    tokens = await bus.key_value(subjects.Buckets.TOKENS)
    await tokens.put(record.login_id, encode(seal_token(KeyRing.parse(KEYS), record)))
    return record.access_token


def _fill(fill_id: int, contract_id: int, symbol: str, qty: int, price: str) -> FillReceived:
    return FillReceived(
        event_id=f"quote-fill-{fill_id}",
        ts_event=fill_id,
        ts_init=fill_id,
        fill_id=fill_id,
        order_id=90_000 + fill_id,
        account_id=ACCOUNT,
        contract_id=contract_id,
        symbol=symbol,
        action="Buy",
        qty=qty,
        price=Decimal(price),
    )


def _contract_id(sim: Simulator, symbol: str) -> int:
    info = sim.venue.contracts.resolve(symbol)
    assert info is not None
    return info.contract.id


async def _set_price(sim: Simulator, symbol: str, price: float) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        answer = await client.post(
            sim.url + "/admin/prices", json={"symbol": symbol, "price": price}
        )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ledger(
    nats_url: str, bus: Bus, simulator: Simulator, clock: FakeClock
) -> AsyncIterator[tuple[LedgerService, httpx.AsyncClient]]:
    await _store_token(bus, simulator, "quotes")
    settings = LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        admin_token=TOKEN,
        token_keys=KEYS,
        tradovate_rest_url=simulator.rest_url,
        reconcile_interval_s=0.0,
        tradovate_md_url=simulator.md_url,
        md_resync_s=0.05,
    )
    service = await build_ledger(settings, clock=clock)
    await service.start()
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0, headers=AUTH)
    try:
        yield service, client
    finally:
        await client.aclose()
        await service.stop()


async def _rows(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = (await client.get("/admin/unrealized/positions")).json()
    return {row["symbol"]: row for row in answer["positions"]}


async def _row_at(client: httpx.AsyncClient, symbol: str, price: str) -> dict[str, Any] | None:
    row = (await _rows(client)).get(symbol)
    return row if row is not None and Decimal(row["mark_price"]) == Decimal(price) else None


async def test_the_mark_follows_the_venue_price_without_any_fill(
    bus: Bus, simulator: Simulator, ledger: tuple[LedgerService, httpx.AsyncClient]
) -> None:
    _, client = ledger
    mnq = _contract_id(simulator, "MNQZ6")
    await _set_price(simulator, "MNQZ6", 21000.0)
    await bus.publish(subjects.fills_subject(ACCOUNT), _fill(1, mnq, "MNQZ6", 2, "21000"))

    await _set_price(simulator, "MNQZ6", 21010.5)
    up = await eventually(lambda: _row_at(client, "MNQZ6", "21010.5"), what="the quote at 21010.5")
    await _set_price(simulator, "MNQZ6", 20990.0)
    down = await eventually(lambda: _row_at(client, "MNQZ6", "20990"), what="the quote at 20990")

    assert up["mark_source"] == "trade"
    assert Decimal(up["unrealized_pnl"]) == Decimal("21")  # 2 * 10.5 points
    assert Decimal(up["unrealized_pnl_money"]) == Decimal("42")  # MNQ: $2 a point
    assert Decimal(down["unrealized_pnl_money"]) == Decimal("-40")
    assert down["mark_age_ms"] == 0  # the ledger's clock stands still in this test
    totals = (await client.get("/admin/unrealized", params={"by": "contract"})).json()
    assert [(r["key"], r["quote_marked_positions"]) for r in totals["rows"]] == [("MNQZ6", 1)]
    assert totals["market_data"]["connected"] is True
    assert totals["market_data"]["subscribed"] == [mnq]


async def test_a_contract_without_a_quote_is_marked_at_its_last_fill(
    bus: Bus, simulator: Simulator, ledger: tuple[LedgerService, httpx.AsyncClient]
) -> None:
    service, client = ledger
    mnq = _contract_id(simulator, "MNQZ6")
    unquoted = 987_654_321  # a contract the venue does not know: its subscription is refused
    await _set_price(simulator, "MNQZ6", 21000.0)
    await bus.publish(subjects.fills_subject(ACCOUNT), _fill(1, mnq, "MNQZ6", 1, "20995"))
    await bus.publish(subjects.fills_subject(ACCOUNT), _fill(2, unquoted, "ESZ6", 1, "6000.25"))

    await eventually(
        lambda: (
            service.broker_check is not None
            and service.broker_check.quotes is not None
            and unquoted in service.broker_check.quotes.client.refused
        ),
        what="the refused subscription",
    )

    async def both_marked() -> dict[str, dict[str, Any]] | None:
        rows = await _rows(client)
        quoted = rows.get("MNQZ6", {}).get("mark_source") == "trade"
        return rows if quoted and "ESZ6" in rows else None

    rows = await eventually(both_marked, what="both positions marked")

    assert rows["MNQZ6"]["mark_source"] == "trade"
    es = rows["ESZ6"]
    assert (es["mark_source"], Decimal(es["mark_price"])) == ("fill", Decimal("6000.25"))
    assert Decimal(es["unrealized_pnl"]) == 0
    status = (await client.get("/admin/unrealized/positions")).json()["market_data"]
    assert str(unquoted) in status["refused"]


async def test_a_dropped_market_data_socket_reconnects_and_quotes_again(
    bus: Bus, simulator: Simulator, ledger: tuple[LedgerService, httpx.AsyncClient]
) -> None:
    service, client = ledger
    assert service.broker_check is not None
    assert service.broker_check.quotes is not None
    feed = service.broker_check.quotes
    mnq = _contract_id(simulator, "MNQZ6")
    await _set_price(simulator, "MNQZ6", 21000.0)
    await bus.publish(subjects.fills_subject(ACCOUNT), _fill(1, mnq, "MNQZ6", 1, "21000"))
    await eventually(lambda: feed.client.quote(mnq) is not None, what="the first quote")
    assert feed.client.connects == 1

    assert simulator.md_hub.drop() == 1
    await eventually(lambda: feed.client.connects == 2, what="the reconnect")
    await _set_price(simulator, "MNQZ6", 21005.0)
    row = await eventually(lambda: _row_at(client, "MNQZ6", "21005"), what="a quote after it")

    assert row["mark_source"] == "trade"
    assert Decimal(row["unrealized_pnl_money"]) == Decimal("10")
    assert feed.client.wanted == frozenset({mnq})


async def test_an_old_quote_or_a_lost_socket_falls_back_to_the_last_fill(
    bus: Bus,
    simulator: Simulator,
    clock: FakeClock,
    ledger: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = ledger
    assert service.broker_check is not None
    feed = service.broker_check.quotes
    assert feed is not None
    mnq = _contract_id(simulator, "MNQZ6")
    await _set_price(simulator, "MNQZ6", 21000.0)
    await bus.publish(subjects.fills_subject(ACCOUNT), _fill(1, mnq, "MNQZ6", 1, "20990"))
    await _set_price(simulator, "MNQZ6", 21002.0)
    await eventually(lambda: _row_at(client, "MNQZ6", "21002"), what="the quote")

    await clock.advance(LedgerSettings().md_quote_max_age_s + 1)  # no new quote since
    stale = (await _rows(client))["MNQZ6"]
    await _set_price(simulator, "MNQZ6", 21004.0)  # a new quote is fresh again
    fresh = await eventually(lambda: _row_at(client, "MNQZ6", "21004"), what="a new quote")

    # the venue revokes the only token: it closes the socket and refuses every reconnect
    (session,) = simulator.venue.state.sessions.values()
    simulator.venue.revoke_token(session)
    await eventually(lambda: not feed.client.connected, what="the socket closed")
    lost = (await _rows(client))["MNQZ6"]

    assert (stale["mark_source"], Decimal(stale["mark_price"])) == ("fill", Decimal("20990"))
    assert fresh["mark_source"] == "trade"
    assert (lost["mark_source"], Decimal(lost["mark_price"])) == ("fill", Decimal("20990"))
    assert feed.client.connects == 1
