"""The ledger over a real nats-server, through its HTTP API: fills in, positions out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived, OrderAccepted, OrderRejected
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


def _fill(fill_id: int, account_id: int, action: str, qty: int, price: str) -> FillReceived:
    return FillReceived(
        event_id=f"fill-event-{fill_id}-{account_id}-{action}",
        ts_event=fill_id,
        ts_init=fill_id,
        fill_id=fill_id,
        order_id=fill_id * 10,
        account_id=account_id,
        contract_id=3570918,
        symbol="MNQZ5",
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal(price),
    )


async def _publish_fills(bus: Bus, *fills: FillReceived) -> None:
    for fill in fills:
        await bus.publish(subjects.fills_subject(fill.account_id), fill)


class Ledger:
    """A started ledger and an HTTP client for it."""

    def __init__(self, service: LedgerService, client: httpx.AsyncClient) -> None:
        self.service = service
        self.client = client

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


async def _start_ledger(nats_url: str) -> Ledger:
    service = await build_ledger(LedgerSettings(nats_url=nats_url, ledger_port=0))
    await service.start()
    return Ledger(service, httpx.AsyncClient(base_url=service.url, timeout=10.0))


async def _stop_ledger(ledger: Ledger) -> None:
    await ledger.client.aclose()
    await ledger.service.stop()


@pytest.fixture
async def ledger(nats_url: str) -> AsyncIterator[Ledger]:
    started = await _start_ledger(nats_url)
    try:
        yield started
    finally:
        await _stop_ledger(started)


async def _fills_applied(ledger: Ledger, count: int) -> bool:
    health = await ledger.get("/healthz")
    return bool(health["fills_applied"] + health["duplicate_fills"] >= count)


async def test_fills_become_positions(ledger: Ledger, bus: Bus) -> None:
    await _publish_fills(
        bus,
        _fill(1, 11, "Buy", 2, "21500.25"),
        _fill(2, 11, "Buy", 2, "21502.25"),
        _fill(3, 11, "Sell", 3, "21510.00"),
    )

    done: bool = await eventually(lambda: _fills_applied(ledger, 3), what="three fills applied")
    assert done
    body = await ledger.get("/positions")
    assert body == {
        "positions": [
            {
                "account_id": 11,
                "symbol": "MNQZ5",
                "contract_id": 3570918,
                "net_pos": 1,
                "avg_price": "21501.25",
                "realized_pnl": "26.25",
                "realized_pnl_money": str(Decimal("26.25") * 2),  # MNQ: $2 a point
                "currency": "USD",
                "fill_count": 3,
                "bought": 4,
                "sold": 3,
                "last_fill_id": 3,
                "updated_ns": 3,
            }
        ]
    }


async def test_a_fill_delivered_twice_counts_once(ledger: Ledger, bus: Bus) -> None:
    original = _fill(5, 11, "Buy", 1, "100")
    # Same fill_id under another event id (so another Nats-Msg-Id): JetStream stores both.
    again = msgspec.structs.replace(original, event_id="republished")
    await _publish_fills(bus, original, again, _fill(6, 11, "Buy", 1, "102"))

    done: bool = await eventually(lambda: _fills_applied(ledger, 3), what="all three seen")
    assert done
    health = await ledger.get("/healthz")
    (position,) = (await ledger.get("/positions/11"))["positions"]
    assert (health["fills_applied"], health["duplicate_fills"]) == (2, 1)
    assert position["net_pos"] == 2
    assert position["fill_count"] == 2
    assert position["avg_price"] == "101"


async def test_restart_rebuilds_the_same_projection_from_the_stream(
    nats_url: str, bus: Bus
) -> None:
    await _publish_fills(
        bus,
        _fill(1, 11, "Buy", 3, "10.5"),
        _fill(2, 12, "Sell", 1, "20"),
        _fill(3, 11, "Sell", 1, "12"),
    )
    first = await _start_ledger(nats_url)
    try:
        # start() returns only after the replay reached the end of the stream.
        before = await first.get("/positions")
        orders_before = await first.get("/positions/11")
    finally:
        await _stop_ledger(first)
    assert [p["net_pos"] for p in before["positions"]] == [2, -1]
    assert before["positions"][0]["realized_pnl"] == "1.5"

    await _publish_fills(bus, _fill(4, 12, "Buy", 1, "19"))
    second = await _start_ledger(nats_url)
    try:
        after = await second.get("/positions")
        health = await second.get("/healthz")
        assert await second.get("/positions/11") == orders_before
    finally:
        await _stop_ledger(second)
    assert health["status"] == "ok"
    assert health["fills_applied"] == 4
    assert after["positions"][0] == before["positions"][0]
    assert after["positions"][1]["net_pos"] == 0
    assert after["positions"][1]["realized_pnl"] == "1"


async def test_account_query_never_returns_another_accounts_positions(
    ledger: Ledger, bus: Bus
) -> None:
    await _publish_fills(
        bus,
        _fill(1, 11, "Buy", 1, "100"),
        _fill(2, 12, "Buy", 5, "100"),
        _fill(3, 13, "Sell", 2, "100"),
    )
    done: bool = await eventually(lambda: _fills_applied(ledger, 3), what="fills applied")
    assert done

    for account_id, net in [(11, 1), (12, 5), (13, -2)]:
        by_path = await ledger.get(f"/positions/{account_id}")
        by_query = await ledger.get("/positions", account_id=account_id)
        assert by_path["account_id"] == account_id
        assert [(p["account_id"], p["net_pos"]) for p in by_path["positions"]] == [
            (account_id, net)
        ]
        assert by_query["positions"] == by_path["positions"]
    assert (await ledger.get("/positions/99"))["positions"] == []
    assert len((await ledger.get("/positions"))["positions"]) == 3


async def test_order_outcomes_are_counted_per_account(ledger: Ledger, bus: Bus) -> None:
    common: dict[str, Any] = {
        "ts_event": 1,
        "ts_init": 1,
        "signal_id": "s1",
        "strategy_id": "st",
        "login_id": "l",
    }
    accepted = OrderAccepted(
        event_id="a1", intent_id="s1-11", account_id=11, symbol="MNQZ5", order_id=1, **common
    )
    rejected = OrderRejected(
        event_id="r1", intent_id="s1-12", account_id=12, reason="max-contracts", **common
    )
    await bus.publish(subjects.orders_subject(11), accepted)
    await bus.publish(subjects.orders_subject(12), rejected)

    async def counted() -> bool:
        body = await ledger.get("/positions/12")
        return bool(body["orders"]["rejected"] == 1)

    done: bool = await eventually(counted, what="rejection counted")
    assert done
    assert (await ledger.get("/positions/11"))["orders"] == {"accepted": 1, "rejected": 0}
    assert (await ledger.get("/positions/12"))["orders"] == {"accepted": 0, "rejected": 1}


async def test_health_reports_ok_after_replay_of_empty_streams(ledger: Ledger) -> None:
    health = await ledger.get("/healthz")

    assert health == {
        "status": "ok",
        "fills_applied": 0,
        "duplicate_fills": 0,
        "unattributed_fills": 0,
        "streams": {
            "FILLS": {"last_seq": 0, "caught_up": True, "lost": 0},
            "ORDERS": {"last_seq": 0, "caught_up": True, "lost": 0},
        },
        "snapshot": {
            "covered": {"FILLS": 0, "ORDERS": 0},
            "saved": 0,
            "failures": 0,
            "last_taken_ns": None,
        },
    }
