"""Positions by login and by strategy over a real nats-server (ADR-0124)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import encode
from phalanx_common.records import AccountRecord
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.waiting import eventually

from .conftest import accepted_order, fill_event

pytestmark = pytest.mark.integration

TOKEN = "ledger-admin-token-for-position-tests-19be"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


_fill = fill_event


_accepted = accepted_order


@pytest.fixture
async def ledger(nats_url: str, bus: Bus) -> AsyncIterator[httpx.AsyncClient]:
    accounts = await bus.key_value(subjects.Buckets.ACCOUNTS)
    for account_id, login in ((1, "login-a"), (2, "login-a"), (3, "login-b")):
        record = AccountRecord(
            account_id=account_id, account_spec=f"DEMO{account_id}", login_id=login, user_id=7
        )
        await accounts.put(str(account_id), encode(record))
    service: LedgerService = await build_ledger(
        LedgerSettings(nats_url=nats_url, ledger_port=0, admin_token=TOKEN)
    )
    await service.start()
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0)
    try:
        yield client
    finally:
        await client.aclose()
        await service.stop()


async def _stage(bus: Bus, client: httpx.AsyncClient) -> None:
    """Strategy trend buys 2 on account 1 (leg sells 1), meanrev sells 1 on account 3; a
    trader sells the other contract of account 1 by hand."""
    for order in (_accepted(500, 1, "trend", 501), _accepted(700, 3, "meanrev", 701)):
        await bus.publish(subjects.orders_subject(order.account_id), order)
    fills = [
        _fill(1, 500, 1, "Buy", 2, "21000"),
        _fill(2, 501, 1, "Sell", 1, "21010"),
        _fill(3, 700, 3, "Sell", 1, "21005"),
        _fill(4, 900, 1, "Sell", 1, "21020"),
    ]
    for fill in fills:
        await bus.publish(subjects.fills_subject(fill.account_id), fill)

    async def applied() -> bool:
        return bool((await client.get("/healthz")).json()["fills_applied"] == len(fills))

    assert await eventually(applied, what="four fills applied")


async def test_positions_of_a_login_are_those_of_its_accounts(
    ledger: httpx.AsyncClient, bus: Bus
) -> None:
    await _stage(bus, ledger)
    body = (await ledger.get("/admin/positions/by-login/login-a", headers=AUTH)).json()
    assert body["accounts"] == [1, 2]
    assert [(p["account_id"], p["net_pos"]) for p in body["positions"]] == [(1, 0)]
    body = (await ledger.get("/admin/positions/by-login/login-b", headers=AUTH)).json()
    assert [(p["account_id"], p["net_pos"]) for p in body["positions"]] == [(3, -1)]
    unknown = (await ledger.get("/admin/positions/by-login/nobody", headers=AUTH)).json()
    assert unknown == {"login_id": "nobody", "accounts": [], "positions": []}


async def test_positions_by_strategy_sum_the_fills_attributed_to_it(
    ledger: httpx.AsyncClient, bus: Bus
) -> None:
    await _stage(bus, ledger)
    body = (await ledger.get("/admin/positions/by-strategy", headers=AUTH)).json()
    rows = {(p["strategy_id"], p["account_id"]): p for p in body["positions"]}
    assert set(rows) == {("trend", 1), ("meanrev", 3), ("outside", 1)}
    trend = rows[("trend", 1)]
    # bought 2, its leg sold 1 at +10 points: 1 still open as far as trend's fills go
    assert (trend["net_pos"], trend["bought"], trend["sold"]) == (1, 2, 1)
    assert (trend["realized_pnl"], trend["realized_pnl_money"]) == ("10", "20")
    outside = rows[("outside", 1)]
    # the hand-made sale closed the account's last contract: +20 points, $40
    assert (outside["net_pos"], outside["realized_pnl_money"]) == (-1, "40")
    one = (await ledger.get("/admin/positions/by-strategy/meanrev", headers=AUTH)).json()
    assert [(p["account_id"], p["net_pos"]) for p in one["positions"]] == [(3, -1)]


async def test_position_views_need_the_credential_and_are_in_openapi(
    ledger: httpx.AsyncClient,
) -> None:
    paths = (
        "/admin/positions/by-login/login-a",
        "/admin/positions/by-strategy",
        "/admin/positions/by-strategy/trend",
    )
    for path in paths:
        assert (await ledger.get(path)).status_code == 401
        assert (await ledger.get(path, headers={"Authorization": "Bearer no"})).status_code == 401
        assert (await ledger.get(path, headers=AUTH)).status_code == 200
    spec = (await ledger.get("/openapi.json")).json()
    assert {
        "/admin/positions/by-login/{login_id}",
        "/admin/positions/by-strategy",
        "/admin/positions/by-strategy/{strategy_id}",
    } <= set(spec["paths"])
