"""The ledger's admin API over a real nats-server: dollar P&L, attribution, paging, CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import OrderAccepted
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.waiting import eventually

from .conftest import accepted_order, fill_event

pytestmark = pytest.mark.integration

TOKEN = "ledger-admin-token-for-tests-3f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


_fill = fill_event


def _accepted(order_id: int, account_id: int, strategy_id: str, oso1: int) -> OrderAccepted:
    return accepted_order(
        order_id,
        account_id,
        strategy_id,
        oso1,
        intent_id=f"sig-{strategy_id}-{account_id}",
    )


@pytest.fixture
async def ledger(nats_url: str) -> AsyncIterator[tuple[LedgerService, httpx.AsyncClient]]:
    settings = LedgerSettings(nats_url=nats_url, ledger_port=0, admin_token=TOKEN)
    service = await build_ledger(settings)
    await service.start()
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0)
    try:
        yield service, client
    finally:
        await client.aclose()
        await service.stop()


async def _stage(bus: Bus, client: httpx.AsyncClient) -> None:
    """Two accounts on strategy "trend": entry buys 2 at 21000, its bracket leg sells at 21010;
    plus a manual sell and buy-back on account 2 (outside): 21020 -> 21030, one contract."""
    for order in (_accepted(500, 1, "trend", 501), _accepted(600, 2, "trend", 601)):
        await bus.publish(subjects.orders_subject(order.account_id), order)
    fills = [
        _fill(1, 500, 1, "Buy", 2, "21000"),
        _fill(2, 600, 2, "Buy", 2, "21000"),
        _fill(3, 501, 1, "Sell", 2, "21010"),
        _fill(4, 601, 2, "Sell", 2, "21010"),
        _fill(5, 900, 2, "Sell", 1, "21020"),
        _fill(6, 901, 2, "Buy", 1, "21030"),
    ]
    for fill in fills:
        await bus.publish(subjects.fills_subject(fill.account_id), fill)

    async def all_applied() -> bool:
        health = (await client.get("/healthz")).json()
        return bool(health["fills_applied"] == len(fills))

    assert await eventually(all_applied, what="six fills applied")


async def test_admin_routes_need_the_credential(
    ledger: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    _, client = ledger
    for path in ("/admin/pnl", "/admin/fills", "/admin/fills.csv", "/admin/pnl.csv"):
        assert (await client.get(path)).status_code == 401
        assert (
            await client.get(path, headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
        assert (await client.get(path, headers=AUTH)).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert {"/admin/pnl", "/admin/fills", "/admin/fills.csv", "/admin/pnl.csv"} <= set(
        spec["paths"]
    )
    bad = await client.get("/admin/fills", params={"cursor": "not-a-cursor"}, headers=AUTH)
    assert bad.status_code == 422
    bad = await client.get("/admin/fills", params={"since": "yesterday"}, headers=AUTH)
    assert bad.status_code == 422


async def test_dollar_pnl_by_strategy_account_and_day(
    ledger: tuple[LedgerService, httpx.AsyncClient], bus: Bus
) -> None:
    _, client = ledger
    await _stage(bus, client)

    async def orders_known() -> bool:
        body = (await client.get("/admin/pnl", params={"by": "strategy"}, headers=AUTH)).json()
        return {row["key"] for row in body["rows"]} == {"trend", "outside"}

    assert await eventually(orders_known, what="both acceptances read")
    trend = (21010 - 21000) * 2 * 2  # 10 points * 2 contracts * $2 = $40, per account
    outside = (21020 - 21030) * 1 * 2  # short 1 at 21020 covered at 21030: -$20
    body = (await client.get("/admin/pnl", params={"by": "strategy"}, headers=AUTH)).json()
    money = {row["key"]: Decimal(row["realized_pnl_money"]) for row in body["rows"]}
    assert money == {"trend": 2 * trend, "outside": outside}
    body = (await client.get("/admin/pnl", params={"by": "account"}, headers=AUTH)).json()
    money = {row["key"]: Decimal(row["realized_pnl_money"]) for row in body["rows"]}
    assert money == {"1": trend, "2": trend + outside}
    body = (await client.get("/admin/pnl", params={"by": "day"}, headers=AUTH)).json()
    assert [(r["key"], r["currency"], Decimal(r["realized_pnl_money"])) for r in body["rows"]] == [
        ("2026-11-30", "USD", Decimal(2 * trend + outside))
    ]
    positions = (await client.get("/positions/2")).json()["positions"]
    assert Decimal(positions[0]["realized_pnl_money"]) == trend + outside


async def test_fills_filter_page_and_export(
    ledger: tuple[LedgerService, httpx.AsyncClient], bus: Bus
) -> None:
    _, client = ledger
    await _stage(bus, client)

    async def legs_attributed() -> bool:
        body = (
            await client.get("/admin/fills", params={"strategy_id": "trend"}, headers=AUTH)
        ).json()
        return len(body["fills"]) == 4

    assert await eventually(legs_attributed, what="entries and legs attributed")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"account_id": 2, "limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/admin/fills", params=params, headers=AUTH)).json()
        seen += [row["fill_id"] for row in body["fills"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [2, 4, 5, 6]
    body = (await client.get("/admin/fills", params={"account_id": 2}, headers=AUTH)).json()
    assert [(r["strategy_id"], r["leg"]) for r in body["fills"]] == [
        ("trend", "entry"),
        ("trend", "oso1"),
        ("outside", "outside"),
        ("outside", "outside"),
    ]
    later = (await client.get("/admin/fills", params={"since": "2026-12-01"}, headers=AUTH)).json()
    assert later["fills"] == []

    csv = await client.get(
        "/admin/fills", params={"account_id": 1}, headers=AUTH | {"Accept": "text/csv"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("fill_id,order_id,account_id,")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "3"]
    daily = await client.get("/admin/pnl.csv", params={"by": "day"}, headers=AUTH)
    header, row = daily.text.splitlines()
    assert header.startswith("key,currency,realized_pnl_money,fills,unpriced_fills,")
    assert row.split(",")[:2] == ["2026-11-30", "USD"]
    assert Decimal(row.split(",")[2]) == 40 + 40 - 20
