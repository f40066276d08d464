"""The admin API: bearer token, strategies, subscriptions (against real KV buckets)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_common.bus import Bus
from phalanx_common.codec import decode, encode
from phalanx_common.records import AccountRecord, StrategyRecord, SubscriptionRecord
from phalanx_common.subjects import Buckets

pytestmark = pytest.mark.integration


async def _link_accounts(bus: Bus, *account_ids: int) -> None:
    """Write accounts the way the auth service does."""
    kv = await bus.key_value(Buckets.ACCOUNTS)
    for account_id in account_ids:
        record = AccountRecord(
            account_id=account_id, account_spec=f"DEMO{account_id}", login_id="l1", user_id=7
        )
        await kv.put(str(account_id), encode(record))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/strategies"),
        ("GET", "/admin/strategies"),
        ("GET", "/admin/strategies/x"),
        ("PUT", "/admin/strategies/x/subscriptions/1"),
        ("POST", "/admin/strategies/x/subscriptions:bulk"),
        ("GET", "/admin/strategies/x/subscriptions"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "test-admin-token"])
async def test_every_admin_route_requires_the_bearer_token(
    client: httpx.AsyncClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = await client.request(method, path, json={"name": "n"}, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_create_strategy_returns_secret_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, bus: Bus, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/admin/strategies",
        json={"name": "Trend MNQ", "allowed_tickers": ["MNQ1!", " MNQ1!", ""]},
        headers=admin_headers,
    )

    assert response.status_code == 201
    created = response.json()
    secret = created["secret"]
    assert len(secret) >= 40
    assert created["name"] == "Trend MNQ"
    assert created["allowed_tickers"] == ["MNQ1!"]
    assert created["webhook_url"] == (
        f"https://hooks.example.test/webhooks/{created['strategy_id']}/{secret}"
    )
    kv = await bus.key_value(Buckets.STRATEGIES)
    entry = await kv.get(created["strategy_id"])
    assert entry.value is not None
    assert secret.encode() not in entry.value
    record = decode(entry.value, StrategyRecord)
    assert record.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert record.allowed_tickers == ("MNQ1!",)
    assert record.created_ns > 0

    shown = await client.get(f"/admin/strategies/{created['strategy_id']}", headers=admin_headers)
    listed = await client.get("/admin/strategies", headers=admin_headers)
    assert shown.status_code == 200
    view = shown.json()
    assert {k: view[k] for k in ("strategy_id", "name", "allowed_tickers", "created_ns")} == {
        "strategy_id": created["strategy_id"],
        "name": "Trend MNQ",
        "allowed_tickers": ["MNQ1!"],
        "created_ns": record.created_ns,
    }
    # The secret is stored hashed: the URL is shown with a placeholder where it goes.
    assert view["webhook_url"] == (
        f"https://hooks.example.test/webhooks/{created['strategy_id']}/{{secret}}"
    )
    assert [s["strategy_id"] for s in listed.json()["strategies"]] == [created["strategy_id"]]
    assert secret not in shown.text + listed.text


async def test_strategy_written_to_kv_elsewhere_is_served(
    client: httpx.AsyncClient, bus: Bus, admin_headers: dict[str, str]
) -> None:
    """Another replica's strategy: found through the watch or the KV fallback."""
    kv = await bus.key_value(Buckets.STRATEGIES)
    record = StrategyRecord(
        strategy_id="elsewhere-1",
        name="from another replica",
        secret_sha256=hashlib.sha256(b"s3cret").hexdigest(),
    )
    await kv.put(record.strategy_id, encode(record))

    hook = await client.post(
        "/webhooks/elsewhere-1/s3cret", json={"ticker": "MNQ1!", "action": "buy"}
    )
    shown = await client.get("/admin/strategies/elsewhere-1", headers=admin_headers)

    assert hook.status_code == 200
    assert shown.json()["name"] == "from another replica"


async def test_unknown_strategy_and_invalid_body_on_admin(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    missing = await client.get("/admin/strategies/nope", headers=admin_headers)
    nameless = await client.post("/admin/strategies", json={"name": ""}, headers=admin_headers)

    assert missing.status_code == 404
    assert nameless.status_code == 422


async def test_subscribe_one_account_writes_the_record(
    client: httpx.AsyncClient,
    bus: Bus,
    strategy: dict[str, Any],
    admin_headers: dict[str, str],
) -> None:
    await _link_accounts(bus, 101)
    sid = strategy["strategy_id"]

    response = await client.put(
        f"/admin/strategies/{sid}/subscriptions/101",
        json={
            "multiplier": "1.5",
            "fixed_quantity": None,
            "max_quantity": 4,
            "enabled": True,
            "allow_add": True,
            "allow_reversal": False,
        },
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "strategy_id": sid,
        "account_id": 101,
        "multiplier": "1.5",
        "fixed_quantity": None,
        "max_quantity": 4,
        "enabled": True,
        "allow_add": True,
        "allow_reversal": False,
    }
    kv = await bus.key_value(Buckets.SUBSCRIPTIONS)
    entry = await kv.get(f"{sid}.101")
    assert entry.value is not None
    assert decode(entry.value, SubscriptionRecord) == SubscriptionRecord(
        strategy_id=sid,
        account_id=101,
        multiplier=Decimal("1.5"),
        max_quantity=4,
        allow_add=True,
        allow_reversal=False,
    )


async def test_subscribing_an_unknown_account_or_strategy_is_404(
    client: httpx.AsyncClient,
    bus: Bus,
    strategy: dict[str, Any],
    admin_headers: dict[str, str],
) -> None:
    await _link_accounts(bus, 101)
    sid = strategy["strategy_id"]

    no_account = await client.put(
        f"/admin/strategies/{sid}/subscriptions/999", json={}, headers=admin_headers
    )
    no_strategy = await client.put(
        "/admin/strategies/nope/subscriptions/101", json={}, headers=admin_headers
    )
    bad_multiplier = await client.put(
        f"/admin/strategies/{sid}/subscriptions/101", json={"multiplier": "0"},
        headers=admin_headers,
    )  # fmt: skip

    assert no_account.status_code == 404
    assert "999" in no_account.json()["detail"]
    assert no_strategy.status_code == 404
    assert bad_multiplier.status_code == 422
    listed = await client.get(f"/admin/strategies/{sid}/subscriptions", headers=admin_headers)
    assert listed.json() == {"strategy_id": sid, "subscriptions": []}


async def test_bulk_subscribe_and_list(
    client: httpx.AsyncClient,
    bus: Bus,
    strategy: dict[str, Any],
    make_strategy: Any,
    admin_headers: dict[str, str],
) -> None:
    accounts = list(range(1, 26))
    await _link_accounts(bus, *accounts)
    sid = strategy["strategy_id"]
    other = await make_strategy(name="other")

    bulk = await client.post(
        f"/admin/strategies/{sid}/subscriptions:bulk",
        json={"account_ids": [*reversed(accounts), 3], "multiplier": 2, "max_quantity": 10},
        headers=admin_headers,
    )
    other_sub = await client.put(
        f"/admin/strategies/{other['strategy_id']}/subscriptions/1", json={},
        headers=admin_headers,
    )  # fmt: skip
    listed = await client.get(f"/admin/strategies/{sid}/subscriptions", headers=admin_headers)

    assert bulk.status_code == 200, bulk.text
    assert bulk.json() == {"strategy_id": sid, "subscribed": 25, "account_ids": accounts}
    assert other_sub.status_code == 200
    subs = listed.json()["subscriptions"]
    assert [s["account_id"] for s in subs] == accounts
    assert {s["strategy_id"] for s in subs} == {sid}
    assert {(s["multiplier"], s["max_quantity"], s["enabled"]) for s in subs} == {("2", 10, True)}


async def test_bulk_with_an_unknown_account_writes_nothing(
    client: httpx.AsyncClient,
    bus: Bus,
    strategy: dict[str, Any],
    admin_headers: dict[str, str],
) -> None:
    await _link_accounts(bus, 1, 2)
    sid = strategy["strategy_id"]

    bulk = await client.post(
        f"/admin/strategies/{sid}/subscriptions:bulk",
        json={"account_ids": [1, 2, 77]},
        headers=admin_headers,
    )
    listed = await client.get(f"/admin/strategies/{sid}/subscriptions", headers=admin_headers)

    assert bulk.status_code == 404
    assert "77" in bulk.json()["detail"]
    assert listed.json()["subscriptions"] == []
