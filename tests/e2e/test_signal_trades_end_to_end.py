"""One webhook trades every subscribed account exactly once, and the ledger shows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from nats.aio.msg import Msg

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode, decode_event
from phalanx_common.events import ExecBatch
from phalanx_common.records import IntentRecord
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

ENTRY = {
    "ticker": "MNQ1!",
    "action": "buy",
    "quantity": 2,
    "price": 21000,
    "takeProfit": {"limitPrice": 21040},
    "stopLoss": {"type": "stop", "stopPrice": 20980},
}


async def _get(http: httpx.AsyncClient, url: str) -> Any:
    resp = await http.get(url)
    resp.raise_for_status()
    return resp.json()


def _intent_count(batches: list[tuple[str, bytes]]) -> int:
    total = 0
    for _, data in batches:
        event = decode_event(data)
        assert isinstance(event, ExecBatch)
        total += len(event.intents)
    return total


async def _seeded_and_connected(system: RunningSystem) -> SeededStrategy:
    seeded = await seed(system.endpoints, logins=5, accounts_per_login=5)
    assert len(seeded.account_ids) == 25
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 5, what="executor connected all 5 logins")
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            system.endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": 21000}
        )
        resp.raise_for_status()
    return seeded


async def _sim_orders(http: httpx.AsyncClient, system: RunningSystem, account_id: int) -> list[Any]:
    body = await _get(http, f"{system.endpoints.sim}/admin/orders?accountId={account_id}")
    return list(body["orders"] if isinstance(body, dict) else body)


async def _placeoso_requests(http: httpx.AsyncClient, system: RunningSystem) -> list[Any]:
    body = await _get(http, f"{system.endpoints.sim}/admin/requests")
    requests = body["requests"] if isinstance(body, dict) else body
    return [r for r in requests if str(r["endpoint"]).lower() == "order/placeoso"]


async def test_a_webhook_for_25_accounts_places_25_brackets_fills_them_and_the_ledger_agrees(
    system: RunningSystem,
) -> None:
    seeded = await _seeded_and_connected(system)

    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(seeded.webhook_url, json=ENTRY)
        assert resp.status_code == 200, resp.text
        signal_id = resp.json()["id"]

        # the venue got exactly one placeOSO per account, each with the intent id as clOrdId
        async def all_placed() -> list[Any] | None:
            calls = await _placeoso_requests(http, system)
            return calls if len(calls) >= 25 else None

        calls = await eventually(all_placed, timeout=30, what="25 placeOSO calls at the venue")
        assert len(calls) == 25

        # every account holds +2 of the front month in the ledger, built from the venue's fills
        async def positions() -> dict[int, Any] | None:
            body = await _get(http, system.endpoints.ledger + "/positions")
            rows = body["positions"] if isinstance(body, dict) else body
            found = {int(r["account_id"]): r for r in rows if r["symbol"] == front_month()}
            ok = len(found) == 25 and all(int(r["net_pos"]) == 2 for r in found.values())
            return found if ok else None

        ledger = await eventually(positions, timeout=30, what="25 positions of +2 in the ledger")
        assert set(ledger) == set(seeded.account_ids)
        assert all(Decimal(str(r["avg_price"])) == Decimal(21000) for r in ledger.values())

        # each entry fill is attributed, through its order's clOrdId, to this signal's intent
        # (the ORDERS stream may be read after FILLS: attribution follows once it is)
        expected = {
            (account_id, signal_id, ids.intent_id(signal_id, account_id), "entry")
            for account_id in seeded.account_ids
        }

        async def attributed() -> set[tuple[int, str, str, str]] | None:
            resp = await http.get(
                system.endpoints.ledger + "/admin/fills",
                params={"strategy_id": seeded.strategy_id, "limit": 1000},
                headers={"Authorization": f"Bearer {system.endpoints.admin_token}"},
            )
            resp.raise_for_status()
            found = {
                (int(f["account_id"]), f["signal_id"], f["intent_id"], f["leg"])
                for f in resp.json()["fills"]
            }
            return found if found == expected else None

        assert (
            await eventually(attributed, timeout=30, what="25 entry fills attributed") == expected
        )

        for account_id in seeded.account_ids:
            orders = await _sim_orders(http, system, account_id)
            assert {o["accountId"] for o in orders} == {account_id}
            # entry filled; both bracket legs resting at the absolute prices
            assert len(orders) == 3
            venue_positions = await _get(
                http, f"{system.endpoints.sim}/admin/positions?accountId={account_id}"
            )
            rows = (
                venue_positions["positions"]
                if isinstance(venue_positions, dict)
                else venue_positions
            )
            assert [int(p["netPos"]) for p in rows] == [2]

        # a resent identical alert is recognised and trades nothing new
        again = await http.post(seeded.webhook_url, json=ENTRY)
        assert again.status_code == 200
        assert again.json()["id"] == signal_id
        assert again.json()["duplicate"] is True

        bus = await Bus.connect(system.nats_url, "e2e")
        try:
            info = await bus.js.stream_info(subjects.SIGNALS.name)
            assert info.state.messages == 1
        finally:
            await bus.close()
        assert len(await _placeoso_requests(http, system)) == 25


async def test_replayed_signals_and_redelivered_batches_never_place_a_second_order(
    system: RunningSystem,
) -> None:
    seeded = await _seeded_and_connected(system)
    bus = await Bus.connect(system.nats_url, "e2e-replay")
    batches: list[tuple[str, bytes]] = []

    async def capture(msg: Msg) -> None:
        batches.append((msg.subject, msg.data))

    sub = await bus.nc.subscribe("exec.>", cb=capture)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(seeded.webhook_url, json=ENTRY)
            signal_id = resp.json()["id"]

            async def placed() -> bool:
                return len(await _placeoso_requests(http, system)) >= 25

            await eventually(placed, timeout=30, what="25 orders placed")
            await eventually(lambda: _intent_count(batches) == 25, what="25 intents captured")

            # A replay of the stored signal (as `nats stream view` + republish would do):
            # same signal id under a new message id. The planner plans it again; its batches
            # carry the same ids and JetStream drops them.
            stored = await bus.js.get_last_msg(
                subjects.SIGNALS.name, subjects.signals_subject(seeded.strategy_id)
            )
            await bus.js.publish(
                stored.subject or subjects.signals_subject(seeded.strategy_id),
                stored.data or b"",
                headers={"Nats-Msg-Id": "replay-1"},
            )
            # Every batch delivered again under a fresh message id, as after a replica crash:
            # the intent claims stop every order.
            await sub.unsubscribe()
            for n, (subject, data) in enumerate(list(batches)):
                await bus.js.publish(subject, data, headers={"Nats-Msg-Id": f"again-{n}"})

            async def settled() -> bool:
                planner = await bus.js.consumer_info(
                    subjects.SIGNALS.name, subjects.Consumers.PLANNER
                )
                execs = await bus.js.stream_info(subjects.EXEC.name)
                return (
                    planner.num_pending == 0
                    and planner.num_ack_pending == 0
                    and planner.delivered.stream_seq >= 2
                    and execs.state.messages == 0
                )

            await eventually(settled, timeout=30, what="replay and redelivery processed")
            assert len(await _placeoso_requests(http, system)) == 25
            intents = await bus.key_value(subjects.Buckets.INTENTS)
            for account_id in seeded.account_ids:
                entry = await intents.get(ids.intent_id(signal_id, account_id))
                assert decode(entry.value or b"", IntentRecord).state == "accepted"
    finally:
        await bus.close()
